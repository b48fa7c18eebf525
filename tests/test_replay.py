"""Saved pages replayed through extraction and normalisation, against their expected output.

A case is `fixtures/pages/<source>/<kind>/<case>/` (see crawler/replay.py); record a new one
with `darkarchive fixtures save-page <source> <url> --kind <kind> --case <name>`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.replay import PAGES_DIR, replay
from crawler.sources.loader import load_source

CASES = sorted(p.parent for p in PAGES_DIR.glob("*/*/*/output.json"))


def test_there_are_cases_for_every_page_kind() -> None:
    kinds = {case.parent.name for case in CASES}
    assert {"index", "listing", "vendor"} <= kinds


@pytest.mark.parametrize("case", CASES, ids=lambda p: "/".join(p.parts[-3:]))
def test_replay_matches_expected_output(case: Path) -> None:
    source = load_source(case.parents[1].name)
    expected = json.loads((case / "output.json").read_text(encoding="utf-8"))
    assert replay(source, case) == expected


DEMO_LISTINGS = sorted((PAGES_DIR / "demo" / "listing").glob("*/output.json"))


@pytest.mark.parametrize("output", DEMO_LISTINGS, ids=lambda p: p.parent.name)
def test_demo_listing_cases_agree_with_the_generators_truth(output: Path) -> None:
    """The expected outputs were recorded from day 1 of the demo market: they must be true."""
    from fixtures.market import truth

    listings = {t["listing_id"]: t for t in truth("demo", 1)["listings"]}
    recorded = json.loads(output.read_text(encoding="utf-8"))
    if recorded["state"] == "not_found":
        assert recorded["records"] == []
        return
    (record,) = recorded["records"]
    expected, content = listings[record["key"]], record["content"]
    assert content["title"] == expected["title"]
    assert content["vendor"] == expected["vendor_id"]
    assert content["quantity"]["text"] == expected["quantity_text"]
    assert content["price"]["amount"] == expected["price"]["amount"]
    assert content["price"]["currency"] == expected["price"]["currency"]
    assert content["ships_to"] == expected["ships_to"]
    assert len(recorded["feedback"]) == len(expected["feedback"])
