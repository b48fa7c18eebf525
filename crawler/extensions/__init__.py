"""Scrapy extensions: what a crawl reports while it runs."""
