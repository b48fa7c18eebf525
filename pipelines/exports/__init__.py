"""Exports for publication: flat tables (JSONL, CSV, Parquet), WARC files and a manifest."""

from __future__ import annotations

from pipelines.exports.dataset import ExportRequest, export_dataset, verify

__all__ = ["ExportRequest", "export_dataset", "verify"]
