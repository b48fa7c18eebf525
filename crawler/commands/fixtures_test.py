"""`darkarchive fixtures test`: replay a source's saved cases wherever they live, with a diff.

A team that keeps its sources outside the repository keeps their replay cases there too;
this replays each `<root>/<source>/<kind>/<case>/` (the layout `fixtures save-page` writes,
see crawler/replay.py) through today's code and shows what differs from `output.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

#: differences shown per case; the rest are counted
MAX_SHOWN = 40
_MISSING = object()


def cmd_fixtures_test(args: argparse.Namespace) -> int:
    """0 when every case reads as expected, 1 on a difference, 2 when there is nothing to test."""
    from crawler.replay import PAGES_DIR, replay
    from crawler.sources.loader import load_source

    source = load_source(args.source)
    root = Path(args.root).expanduser() if args.root else PAGES_DIR
    cases = sorted(p.parent for p in (root / source.id).glob("*/*/output.json"))
    if not cases:
        print(
            f"darkarchive: no saved cases under {root / source.id} (expected "
            f"<kind>/<case>/output.json there; save one with `darkarchive fixtures save-page`)",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for case in cases:
        name = f"{case.parent.name}/{case.name}"
        try:
            expected = json.loads((case / "output.json").read_text(encoding="utf-8"))
            got = replay(source, case)
        except (OSError, ValueError, KeyError) as exc:  # a case with a file missing or broken
            failed += 1
            print(f"FAIL {name}: cannot replay: {exc!r}")
            continue
        differences = diff(expected, got)
        if not differences:
            print(f"ok   {name}")
            continue
        failed += 1
        print(f"FAIL {name}: {len(differences)} difference(s), expected -> read")
        for line in differences[:MAX_SHOWN]:
            print(f"  {line}")
        if len(differences) > MAX_SHOWN:
            print(f"  … and {len(differences) - MAX_SHOWN} more")
    print(f"{source.id}: {len(cases)} case(s) under {root / source.id}, {failed} failed")
    return 1 if failed else 0


def diff(expected: Any, got: Any) -> list[str]:
    """Each leaf that differs as `key.path: expected -> read` (`(absent)` where one lacks it).

    >>> diff({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": [1]}})
    ['a.b: 1 -> 2', 'a.c[1]: 2 -> (absent)']
    """
    left, right = dict(_leaves(expected)), dict(_leaves(got))
    lines = []
    for key in sorted(left.keys() | right.keys()):
        before, after = left.get(key, _MISSING), right.get(key, _MISSING)
        if before != after:
            lines.append(f"{key or '(whole output)'}: {_shown(before)} -> {_shown(after)}")
    return lines


def _leaves(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) for every scalar, empty mapping and empty list inside `value`."""
    if isinstance(value, dict) and value:
        return [
            leaf
            for name, item in value.items()
            for leaf in _leaves(item, f"{key}.{name}" if key else str(name))
        ]
    if isinstance(value, list) and value:
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, f"{key}[{i}]")]
    return [(key, value)]


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "…"
