"""The parser version: which reading of a page produced a record, named so a paper can cite it.

A parser is a source's blueprint (selectors, rates, normalise options, page states) read
by the project's extraction and normalisation code. A change to either can change what a
page yields, so the version names both: `<package>+<blueprint hash>.<code hash>`. A fix
to a normaliser therefore shows up as a new parser version even when nobody bumped the
package version, and `darkarchive reparse --write` stores its reading beside the old one.
"""

from __future__ import annotations

import hashlib
import logging
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crawler.sources.model import Source

logger = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parents[1]
# The code that turns a response into records: extraction, then normalisation.
PARSER_CODE = (
    "crawler/pages.py",
    "crawler/extraction",
    "pipelines/entities.py",
    "pipelines/normalise",
    "pipelines/normalise_pipeline.py",
)


@cache
def code_digest() -> str:
    """SHA-256 over the parser's Python files, in path order (computed once per process)."""
    digest = hashlib.sha256()
    for name in PARSER_CODE:
        path = _ROOT / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(_ROOT).as_posix().encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
    return digest.hexdigest()


def package_version() -> str:
    try:
        return version("darkarchive")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def parser_version(source: Source) -> str:
    """`<package>+<blueprint>.<code>`: either part changing means a new parser."""
    blueprint = source.model_dump_json(include={"pages", "rates", "normalise", "states"})
    blueprint_hash = hashlib.sha256(blueprint.encode()).hexdigest()[:12]
    return f"{package_version()}+{blueprint_hash}.{code_digest()[:8]}"
