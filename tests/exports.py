"""Exports compared across crawls: what must differ between two crawls of one market goes."""

from __future__ import annotations

import json
from typing import Any

from subprocesses import run_cli

TIMESTAMPS = {"started_at", "finished_at", "fetched_at", "at"}


def _comparable(value: Any, replacements: dict[str, str]) -> Any:
    """An export line with what must differ between the two crawls taken out."""
    if isinstance(value, dict):
        return {k: _comparable(v, replacements) for k, v in value.items() if k not in TIMESTAMPS}
    if isinstance(value, list):
        return [_comparable(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
    return value


def comparable_export(source: str, base_url: str, env: dict[str, str], *extra: str) -> list[Any]:
    """The export, comparable across sources: feedback ids are derived from the source id,
    and entries that tie on listing and date are then ordered by id, so both go. The run's
    header comes last."""
    lines = run_cli("export", source, *extra, env=env).stdout.splitlines()
    replacements = {base_url: "BASE", f"{source}:": "RUN:"}
    records = [_comparable(json.loads(line), replacements) for line in lines]
    for record in records:
        if record["kind"] == "feedback":
            del record["id"]
    return sorted(records[1:], key=lambda r: json.dumps(r, sort_keys=True)) + records[:1]
