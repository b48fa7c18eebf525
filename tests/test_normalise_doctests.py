"""Runs the doctest examples in the normalisation modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "countries",
    "currencies",
    "dates",
    "errors",
    "numbers",
    "pgp",
    "prices",
    "quantities",
    "ratings",
    "text",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"pipelines.normalise.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
