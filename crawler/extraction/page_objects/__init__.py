"""Page objects: Python extraction for a market too odd for selectors in YAML.

A page object is code. A source file may only name one that is already installed as such:
a callable under this package, under a package the operator lists in
`DARKARCHIVE_PAGE_OBJECT_PACKAGES`, or a `darkarchive.page_objects` entry point
(`crawler.extraction.registry`); it is checked when the file is loaded, before anything is
fetched. It receives the response and returns the same `Extraction` a blueprint would.
"""

from __future__ import annotations

from crawler.extraction.page_objects.demo import demo_vendor

__all__ = ["demo_vendor"]
