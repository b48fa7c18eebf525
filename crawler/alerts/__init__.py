"""Alerts after every run: health checks per source, delivered to the team."""

from __future__ import annotations

from crawler.alerts.config import AlertsConfig, AlertsConfigError, load_alerts_config
from crawler.alerts.deliver import alert_on_run

__all__ = ["AlertsConfig", "AlertsConfigError", "alert_on_run", "load_alerts_config"]
