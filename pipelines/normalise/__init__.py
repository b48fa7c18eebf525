"""Normalisers: raw market text to typed values, each keeping its raw text."""
