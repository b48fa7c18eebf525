"""Source definitions: YAML files validated on load."""
