"""A source may name a Python page object; it must read what the YAML blueprint reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crawler.replay import PAGES_DIR, replay
from crawler.sources.loader import load_source
from crawler.sources.model import PageBlueprint

VENDOR_CASES = sorted((PAGES_DIR / "demo" / "vendor").glob("*/output.json"))


@pytest.mark.parametrize("output", VENDOR_CASES, ids=lambda p: p.parent.name)
def test_page_object_reads_the_same_records_as_the_blueprint(output: Path) -> None:
    demo = load_source("demo")
    pages = dict(demo.pages)
    pages["vendor"] = PageBlueprint(
        url_regex=demo.pages["vendor"].url_regex,
        page_object="crawler.extraction.page_objects.demo_vendor",
    )
    with_page_object = demo.model_copy(update={"pages": pages})
    expected = json.loads(output.read_text(encoding="utf-8"))
    got = replay(with_page_object, output.parent)
    assert got["records"] == expected["records"]
    assert got["problems"] == expected["problems"] == []
