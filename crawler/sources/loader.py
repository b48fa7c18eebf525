"""Load and validate source definitions; a bad file names the file, the key and the fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.config_errors import ConfigFileError
from crawler.config_files import parse_mapping, validate
from crawler.sources.model import Source

if TYPE_CHECKING:
    pass

DEFAULT_SOURCES_DIR = Path(__file__).resolve().parents[2] / "config" / "sources"


class SourceConfigError(ConfigFileError):
    """A source file that cannot be used, with where and why."""

    what = "source definition"


def sources_dir() -> Path:
    """The folder of source files: `DARKARCHIVE_SOURCES_DIR` or the repo's config/sources."""
    return Path(os.environ.get("DARKARCHIVE_SOURCES_DIR", DEFAULT_SOURCES_DIR))


def source_path(source_id: str, directory: Path | None = None) -> Path:
    """A source id names `<dir>/<id>.yaml`; a path to a YAML file is taken as it is."""
    candidate = Path(source_id)
    if candidate.suffix in {".yaml", ".yml"}:
        return candidate
    return (directory or sources_dir()) / f"{source_id}.yaml"


def load_source(source_id: str, directory: Path | None = None) -> Source:
    """Read and validate one source file."""
    path = source_path(source_id, directory)
    source = validate(path, _read_mapping(path, ()), Source, SourceConfigError)
    if source.id != path.stem:
        problem = f"key id: {source.id!r} must match the file name {path.stem!r}"
        raise SourceConfigError(path, [problem])
    return source


def _read_mapping(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """A file's keys on top of those of the source it `extends` (same folder), if any.

    The same market on a second network (its onion mirror beside a clearnet one) is then a
    few lines, not a copy of the blueprint that would drift from the original.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise SourceConfigError(path, [f"no such source file (known sources: {known})"]) from None
    data = parse_mapping(path, text, SourceConfigError, allow_empty=False)
    base_id = data.pop("extends", None)
    if base_id is None:
        return data
    if not isinstance(base_id, str):
        raise SourceConfigError(path, [f"key extends: expected a source id (got {base_id!r})"])
    base_path = source_path(base_id, path.parent)
    if base_path.resolve() in chain or base_path.resolve() == path.resolve():
        raise SourceConfigError(path, [f"key extends: {base_id!r} extends this file again"])
    return _merge(_read_mapping(base_path, (*chain, path.resolve())), data)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value (lists included) replaces the base's."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
