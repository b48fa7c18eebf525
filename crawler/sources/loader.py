"""Load and validate source definitions; a bad file names the file, the key and the fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.config_errors import ConfigFileError
from crawler.config_files import parse_mapping, validate
from crawler.sources.model import Source

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_SOURCES_DIR = Path(__file__).resolve().parents[2] / "config" / "sources"


class SourceConfigError(ConfigFileError):
    """A source file that cannot be used, with where and why."""

    what = "source definition"


def sources_path() -> list[Path]:
    """Where source files are looked for, in order: the folders of `DARKARCHIVE_SOURCES_DIR`
    (separated by `os.pathsep`), then the project's own config/sources.

    A team keeps its own markets in a folder of its own and still crawls the shipped ones;
    a source id found in an earlier folder wins over the same id further on.
    """
    given = os.environ.get("DARKARCHIVE_SOURCES_DIR", "")
    folders = [Path(part).expanduser() for part in given.split(os.pathsep) if part.strip()]
    ordered: list[Path] = []
    for folder in [*folders, DEFAULT_SOURCES_DIR]:
        if folder.resolve() not in {f.resolve() for f in ordered}:
            ordered.append(folder)
    return ordered


def sources_dir() -> Path:
    """The first folder of the search path (where a new source file would go)."""
    return sources_path()[0]


def source_files() -> Iterator[tuple[str, Path, list[Path]]]:
    """Every source id on the search path with the file that wins and the files it hides."""
    found: dict[str, list[Path]] = {}
    for folder in sources_path():
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            found.setdefault(path.stem, []).append(path)
    for source_id in sorted(found):
        winner, *hidden = found[source_id]
        yield source_id, winner, hidden


def source_path(source_id: str, directory: Path | None = None) -> Path:
    """A source id names `<folder>/<id>.yaml` in the first folder of the search path that
    has it (or in `directory` alone, if given); a path to a YAML file is taken as it is."""
    candidate = Path(source_id)
    if candidate.suffix in {".yaml", ".yml"}:
        return candidate
    folders = [directory] if directory is not None else sources_path()
    for folder in folders:
        if (folder / f"{source_id}.yaml").is_file():
            return folder / f"{source_id}.yaml"
    return folders[0] / f"{source_id}.yaml"


def load_source(source_id: str, directory: Path | None = None) -> Source:
    """Read and validate one source file."""
    path = source_path(source_id, directory)
    source = validate(path, _read_mapping(path, ()), Source, SourceConfigError)
    if source.id != path.stem:
        problem = f"key id: {source.id!r} must match the file name {path.stem!r}"
        raise SourceConfigError(path, [problem])
    return source


def _read_mapping(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """A file's keys on top of those of the source it `extends` (in the same folder, else
    on the search path), if any.

    The same market on a second network (its onion mirror beside a clearnet one) is then a
    few lines, not a copy of the blueprint that would drift from the original.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        on_path = path.parent.resolve() in {f.resolve() for f in sources_path()}
        folders = sources_path() if on_path else [path.parent]
        known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")})
        raise SourceConfigError(path, [f"no such source file (known sources: {known})"]) from None
    data = parse_mapping(path, text, SourceConfigError, allow_empty=False)
    base_id = data.pop("extends", None)
    if base_id is None:
        return data
    if not isinstance(base_id, str):
        raise SourceConfigError(path, [f"key extends: expected a source id (got {base_id!r})"])
    base_path = source_path(base_id, path.parent)
    if not base_path.is_file():  # not beside this file: wherever the search path has it
        base_path = source_path(base_id)
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
