"""Item pipelines: normalisation, validation and the versioned MongoDB archive."""
