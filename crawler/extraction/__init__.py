"""Extraction: blueprint-driven field extraction from pages."""
