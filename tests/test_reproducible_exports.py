"""Past runs are immutable: an export of run 1 is the same bytes after five more runs."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from subprocesses import run_cli

from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path

    from pipelines.store.embedded import EmbeddedMongo


def test_an_export_of_run_one_is_byte_identical_after_five_more_runs(
    mongo_server: EmbeddedMongo, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"reproducible_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path),
    }
    with FixtureServer(market="demo", day=1) as market:
        run_cli("crawl", "demo", "--mirror", market.url, env=env)
        first = run_cli("export", "demo", "--run", "demo:000001", env=env).stdout
        for day in range(2, 7):
            market.set_day(day)
            run_cli("crawl", "demo", "--mirror", market.url, env=env)
    again = run_cli("export", "demo", "--run", "demo:000001", env=env).stdout
    latest = run_cli("export", "demo", env=env).stdout
    assert '"run":"demo:000006"' in latest.splitlines()[0]
    narrowed = [line for line in latest.splitlines() if '"narrowed_by":"demo:0000' in line]
    assert narrowed, "later runs narrowed feedback dates: that knowledge is kept too"
    assert again == first
