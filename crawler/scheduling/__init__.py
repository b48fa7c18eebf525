"""Schedules as data: crawl each source on its own clock, jittered, surviving restarts."""
