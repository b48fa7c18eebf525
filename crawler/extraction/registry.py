"""Which page objects a source file may name: installed code only, checked on load.

A YAML file is data; a page object is code. `page_object:` once imported and called any
installed module by dotted path, and a typo was only noticed mid-crawl. Now a name is
either

- an entry point of the group `darkarchive.page_objects` (`demo_vendor`), which a package
  declares in its own metadata (`[project.entry-points."darkarchive.page_objects"]`), or
- a dotted path to a callable defined under `crawler.extraction.page_objects`, or under a
  package the operator lists in `DARKARCHIVE_PAGE_OBJECT_PACKAGES` (comma-separated).

Anything else is a source-definition error naming the file and the key.
"""

from __future__ import annotations

import importlib
import logging
import os
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.http import TextResponse

    from crawler.extraction.blueprint import Extraction

    PageObject = Callable[[TextResponse], Extraction]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "darkarchive.page_objects"
BUILTIN_PACKAGE = "crawler.extraction.page_objects"
PACKAGES_ENV = "DARKARCHIVE_PAGE_OBJECT_PACKAGES"


class UnknownPageObject(ValueError):
    """A `page_object:` that names nothing allowed; the message says what is."""


def allowed_packages() -> tuple[str, ...]:
    """This project's page objects, and the packages the operator configured."""
    extra = [p.strip() for p in os.environ.get(PACKAGES_ENV, "").split(",") if p.strip()]
    return (BUILTIN_PACKAGE, *extra)


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def registered_names() -> list[str]:
    """The entry point names a source file may give."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def _from_entry_point(name: str) -> PageObject:
    found = list(entry_points(group=ENTRY_POINT_GROUP, name=name))
    if not found:
        raise UnknownPageObject(
            f"{name!r} is not a registered page object (entry points of "
            f"{ENTRY_POINT_GROUP}: {registered_names()}); or give a dotted path under "
            f"{list(allowed_packages())}"
        )
    return found[0].load()  # type: ignore[no-any-return]


def _from_package(dotted: str) -> PageObject:
    packages = allowed_packages()
    module_name, _, attr = dotted.rpartition(".")
    if not module_name or not _within(module_name, packages) or attr.startswith("_"):
        raise UnknownPageObject(
            f"{dotted!r} is not under an allowed package {list(packages)} (a page object is "
            f"code: register it as a {ENTRY_POINT_GROUP} entry point or list its package in "
            f"{PACKAGES_ENV})"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownPageObject(f"{dotted!r}: module {module_name!r} not found ({exc})") from exc
    found = getattr(module, attr, None)
    if found is None:
        raise UnknownPageObject(f"{dotted!r}: module {module_name!r} has no {attr!r}")
    # A name imported into an allowed module (`demo.BeautifulSoup`) is not a page object.
    if not _within(getattr(found, "__module__", None) or "", packages):
        raise UnknownPageObject(
            f"{dotted!r} is defined in {getattr(found, '__module__', '?')!r}, "
            f"not under {list(packages)}"
        )
    return found  # type: ignore[no-any-return]


def resolve_page_object(name: str) -> PageObject:
    """The callable `name` stands for, or `UnknownPageObject` saying why it is refused."""
    found = _from_package(name) if "." in name else _from_entry_point(name)
    if not callable(found):
        raise UnknownPageObject(f"{name!r} is not callable (got {type(found).__name__})")
    return found
