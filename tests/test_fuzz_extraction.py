"""Extraction never raises on mutated saved pages: a short coverage-guided fuzz run in CI.

The harness (`tests/fuzz/fuzz_extraction.py`, atheris) reads mutated bodies of the saved
pages under `fixtures/pages/` through the real `read_page` and `normalise_page`, as replay
does; any exception is a crash. Its seed corpus is `tests/fuzz/corpus/` (one file per
saved case), and every input that once crashed it is kept in `tests/fuzz/regressions/`.
The harness runs in a subprocess: atheris instruments the modules it imports, which must
not happen to the test session's own.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.replay import PAGES_DIR

FUZZ = Path(__file__).parent / "fuzz"
HARNESS = FUZZ / "fuzz_extraction.py"
SECONDS = 20  # of fuzzing in CI; the long runs are done by hand (see the harness)
MIN_RUNS = 200  # a run that did less than this tested nothing worth the name
REGRESSIONS = sorted(p for p in (FUZZ / "regressions").iterdir() if p.suffix == ".html")


def _harness(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HARNESS), *args, f"-artifact_prefix={cwd}/"],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
    )  # fmt: skip


def _finding(result: subprocess.CompletedProcess[str]) -> str:
    """The traceback atheris printed, without its list of instrumented modules."""
    output = (result.stdout + result.stderr).splitlines()
    lines = [line for line in output if "INFO: Instrumenting" not in line]
    return "\n".join(lines[-60:])


def test_the_seed_corpus_is_the_saved_pages() -> None:
    """One seed per saved case, its name line first, its body exactly as saved."""
    seeds = {}
    for path in sorted((FUZZ / "corpus").iterdir()):
        name, _, body = path.read_bytes().partition(b"\n")
        seeds[name.decode()] = body
    cases = {str(p.parent.relative_to(PAGES_DIR)) for p in PAGES_DIR.glob("*/*/*/inputs")}
    assert set(seeds) == cases
    for case, body in seeds.items():
        assert body == (PAGES_DIR / case / "inputs" / "body.html").read_bytes(), case


def test_a_short_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    new = tmp_path / "new"  # inputs it finds go here, never into the repo's corpus
    new.mkdir()
    result = _harness(
        str(new), str(FUZZ / "corpus"), f"-dict={FUZZ / 'html.dict'}", f"-max_total_time={SECONDS}",
        "-timeout=20", "-seed=10", "-max_len=32768", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, _finding(result)
    done = re.search(r"Done (\d+) runs", result.stderr)
    assert done is not None and int(done[1]) >= MIN_RUNS, result.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*"))


@pytest.mark.parametrize("case", REGRESSIONS, ids=lambda p: p.stem)
def test_an_input_that_once_crashed_extraction_no_longer_does(case: Path, tmp_path: Path) -> None:
    result = _harness(str(case), cwd=tmp_path)
    assert result.returncode == 0, _finding(result)
