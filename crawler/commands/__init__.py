"""The `darkarchive` subcommands, one module per family (as scrapy/commands/)."""
