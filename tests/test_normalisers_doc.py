"""NORMALISERS.md is what the normalisers' tables say today, not what they said once."""

from __future__ import annotations

import os
from pathlib import Path

from subprocesses import run_cli

from pipelines.normalise.vocabulary import vocabulary_markdown

PAGE = Path(__file__).resolve().parents[1] / "NORMALISERS.md"


def test_the_page_is_current() -> None:
    assert PAGE.read_text() == vocabulary_markdown(), (
        "the normalisers' tables changed: regenerate with "
        "`.venv/bin/darkarchive normalisers > NORMALISERS.md`"
    )


def test_the_command_prints_it_with_every_language_of_the_date_rules() -> None:
    printed = run_cli("normalisers", env=dict(os.environ)).stdout
    assert printed == PAGE.read_text()
    for heading in ("### English (`en`)", "### German (`de`)", "### French (`fr`)"):
        assert heading in printed
    assert "### Russian (`ru`)" in printed and "`N unit назад`" in printed
