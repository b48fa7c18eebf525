"""A configuration file that cannot be used: the file, the key and what was expected.

Source, schedule and alerts files each raise a subclass; the CLI answers all of them with
one line and exit code 2, without importing what reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class ConfigFileError(ValueError):
    """Raised on load, before anything is fetched or written."""

    what = "configuration file"

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class NestedKeyError(ValueError):
    """Raised inside a validator about keys below the one it validates (`pages` →
    `pages.listing.fields.ship_from`): each problem keeps its own key path for the message."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(key)}: {text}" for key, text in problems))
