"""Tor for darkarchive: configuration, control through stem, and what Tor's failures mean."""
