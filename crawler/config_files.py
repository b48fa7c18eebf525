"""Reading a YAML configuration file into its pydantic model, with errors that name the
file, the key and what was expected (the one way source, schedule and alerts files fail)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from crawler.config_errors import NestedKeyError

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic_core import ErrorDetails

    from crawler.config_errors import ConfigFileError

Model = TypeVar("Model", bound=BaseModel)


def describe(error: ErrorDetails) -> list[str]:
    """One pydantic error as `key a.b: what was wrong (got value)`; one line per key when a
    validator found problems in keys below its own (`NestedKeyError`)."""
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    nested = error.get("ctx", {}).get("error")
    if isinstance(nested, NestedKeyError):
        prefix = f"{key}." if error["loc"] else ""
        return [f"key {prefix}{'.'.join(k)}: {text}" for k, text in nested.problems]
    received = error.get("input")
    shown = "" if isinstance(received, dict | list) else f" (got {received!r})"
    return [f"key {key}: {error['msg']}{shown}"]


def parse_mapping(
    path: Path, text: str, error: type[ConfigFileError], *, allow_empty: bool = True
) -> dict[str, Any]:
    """The file's top-level mapping (an empty file is an empty one, if `allow_empty`)."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(path, [f"not valid YAML: {exc}"]) from exc
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        raise error(path, ["expected a mapping of keys at the top level"])
    return data


def validate(
    path: Path, data: dict[str, Any], model: type[Model], error: type[ConfigFileError]
) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(path, [line for e in exc.errors() for line in describe(e)]) from exc


def load_model(path: Path, model: type[Model], error: type[ConfigFileError], missing: str) -> Model:
    """Read, parse and validate `path`; `missing` is the problem a missing file reports."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(path, [missing]) from None
    return validate(path, parse_mapping(path, text, error), model, error)
