"""darkarchive Scrapy project: spiders, source definitions, extraction, CLI."""
