"""`darkarchive fixtures truth` and `fixtures save-page`, run as a team member would."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from crawler.replay import replay
from crawler.sources.loader import load_source
from fixtures.market import truth
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_truth_prints_the_generators_ground_truth() -> None:
    result = _cli("fixtures", "truth", "--market", "demo", "--day", "2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(json.dumps(truth("demo", 2)))


def test_save_page_records_a_case_that_replays_to_its_output(tmp_path: Path) -> None:
    listing = truth("demo", 1)["listings"][0]
    with FixtureServer(market="demo", day=1) as server:
        url = f"{server.url}/listing/{listing['listing_id']}"
        result = _cli(
            "fixtures", "save-page", "demo", url, "--kind", "listing", "--case", "first",
            "--root", str(tmp_path),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    case = tmp_path / "demo" / "listing" / "first"
    assert f"saved {url} as {case}" in result.stdout
    expected = json.loads((case / "output.json").read_text(encoding="utf-8"))
    assert replay(load_source("demo"), case) == expected
    ((record),) = expected["records"]
    assert (record["key"], record["content"]["title"]) == (
        listing["listing_id"],
        listing["title"],
    )
    saved = json.loads((case / "inputs" / "response.json").read_text(encoding="utf-8"))
    assert saved["url"] == url and saved["status"] == 200


def test_save_page_of_a_dead_site_says_so(tmp_path: Path) -> None:
    result = _cli(
        "fixtures", "save-page", "demo", "http://127.0.0.1:9/x", "--kind", "listing",
        "--case", "dead", "--root", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot fetch http://127.0.0.1:9/x" in result.stderr
    assert not any(tmp_path.iterdir())
