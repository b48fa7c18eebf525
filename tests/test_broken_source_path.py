"""`darkarchive crawl path/to/demo.yaml` with a broken copy: one line, exit 2, and no run in
the history of the real `demo` (nor of any source)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from subprocesses import run_cli

from crawler import exit_codes

if TYPE_CHECKING:
    from pathlib import Path


def test_a_broken_copy_given_by_path_writes_no_run(crawl_env: Any, tmp_path: Path) -> None:
    env, db, sources = crawl_env
    copy = tmp_path / "experiments" / "demo.yaml"  # a copy being edited, named as the source
    copy.parent.mkdir()
    text = (sources / "demo.yaml").read_text(encoding="utf-8")
    copy.write_text(text.replace("concurrency: 8", "concurrency: 0"), encoding="utf-8")
    result = run_cli("crawl", str(copy), env=env, code=exit_codes.CONFIG_ERROR)
    message = f"{copy}: key politeness.concurrency: Input should be greater than or equal to 1"
    assert result.stderr.splitlines() == [
        f"darkarchive: bad source definition: {message} (got 0)"
    ], result.stderr
    assert result.stdout == ""
    assert db.runs.count_documents({}) == 0
    assert db.run_events.count_documents({}) == 0
    assert db.leases.count_documents({}) == 0
