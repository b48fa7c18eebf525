"""darkarchive's own signals, sent through the crawler's signal manager."""

from __future__ import annotations

#: something happened that belongs in the run's record (kind, reason, url, detail)
run_event = object()
