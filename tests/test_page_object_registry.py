"""A page object is code: only installed page objects load, and a bad one costs a page only.

Before: `page_object:` imported and called any module by dotted path, a typo was noticed
thirty pages into a crawl, and a page object calling `sys.exit` wedged the crawl. Now a
name is checked when the source file loads (the message names the file and the key), and
a page object that raises, exits or never returns is recorded as a problem on its page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from scrapy.http import HtmlResponse

from crawler.extraction.blueprint import Extraction
from crawler.extraction.guarded import run_page_object
from crawler.extraction.registry import (
    ENTRY_POINT_GROUP,
    PACKAGES_ENV,
    UnknownPageObject,
    resolve_page_object,
)
from crawler.sources.loader import DEFAULT_SOURCES_DIR, SourceConfigError, load_source
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path

    from pymongo.database import Database


HOSTILE_PAGES = '''
"""Page objects that misbehave, for the tests (a marker file says one was called)."""
import os, pathlib, sys, time


def _called():
    marker = os.environ.get("HOSTILE_PAGE_MARKER")
    if marker:
        pathlib.Path(marker).touch()


def exits(response):
    _called()
    sys.exit(3)


def raises(response):
    raise RuntimeError("no such element")


def spins(response):
    _called()
    while True:
        pass


def sleeps(response):
    _called()
    while True:
        time.sleep(0.05)


def wrong_type(response):
    return {"name": "x"}
'''

DIST_INFO_ENTRY_POINTS = f"""
[{ENTRY_POINT_GROUP}]
demo_vendor_ep = crawler.extraction.page_objects.demo:demo_vendor
"""


@pytest.fixture
def hostile_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package `hostile_pages` on the path, allowed by DARKARCHIVE_PAGE_OBJECT_PACKAGES,
    and a distribution declaring one entry point (as `pip install` would have left it)."""
    root = tmp_path / "plugins"
    (root / "hostile_pages").mkdir(parents=True)
    (root / "hostile_pages" / "__init__.py").write_text(HOSTILE_PAGES, encoding="utf-8")
    dist = root / "darkarchive_test_pages-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: darkarchive-test-pages\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(DIST_INFO_ENTRY_POINTS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv(PACKAGES_ENV, "hostile_pages")
    return root


def _demo_with_vendor_page_object(directory: Path, name: str, **extra: Any) -> Path:
    data = yaml.safe_load((DEFAULT_SOURCES_DIR / "demo.yaml").read_text(encoding="utf-8"))
    data["pages"]["vendor"] = {"url_regex": "/vendor/[^/?#]+$", "page_object": name, **extra}
    path = directory / "demo.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "refused_because"),
    [
        ("crawler.extraction.page_objects.demo_vendor", None),
        ("crawler.extraction.page_objects.demo.demo_vendor", None),
        ("demo_vendor_ep", None),  # a registered entry point
        ("hostile_pages.exits", None),  # under the configured package
        ("os.system", "is not under an allowed package"),
        ("subprocess.run", "is not under an allowed package"),
        ("crawler.pages.read_page", "is not under an allowed package"),
        ("crawler.extraction.page_objects.demo.BeautifulSoup", "is defined in 'bs4"),
        ("crawler.extraction.page_objects.demo.VENDOR_FIELDS", "is defined in"),
        ("crawler.extraction.page_objects.demo_vendr", "has no 'demo_vendr'"),
        ("crawler.extraction.page_objects.nosuch.f", "module 'crawler.extraction.page_o"),
        ("crawler.extraction.page_objects.demo._text", "is not under an allowed package"),
        ("demo_vendr", "is not a registered page object"),
        ("hostile_pagesx.exits", "is not under an allowed package"),
    ],
)
def test_only_installed_page_objects_load(
    hostile_pages: Path, tmp_path: Path, name: str, refused_because: str | None
) -> None:
    path = _demo_with_vendor_page_object(tmp_path, name)
    if refused_because is None:
        source = load_source(str(path))
        assert source.pages["vendor"].page_object == name
        assert callable(resolve_page_object(name))
        return
    with pytest.raises(SourceConfigError) as caught:
        load_source(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: key pages.vendor.page_object: ")
    assert refused_because in message


def test_the_configured_package_is_needed(tmp_path: Path, hostile_pages: Path) -> None:
    os.environ.pop(PACKAGES_ENV)
    with pytest.raises(UnknownPageObject, match="DARKARCHIVE_PAGE_OBJECT_PACKAGES"):
        resolve_page_object("hostile_pages.exits")


def _response() -> HtmlResponse:
    return HtmlResponse("http://m.example/vendor/v1", body=b"<h1>v</h1>", encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "timeout", "problem"),
    [
        ("hostile_pages.exits", 5.0, "page object hostile_pages.exits raised SystemExit: 3"),
        ("hostile_pages.raises", 5.0, "raised RuntimeError: no such element"),
        ("hostile_pages.wrong_type", 5.0, "returned dict, not an Extraction"),
        ("hostile_pages.sleeps", 0.5, "did not finish within 0.5 s on http://m.example/vendor/"),
    ],
)
def test_a_failing_page_object_fails_its_page_only(
    hostile_pages: Path, name: str, timeout: float, problem: str
) -> None:
    started = time.monotonic()
    got = run_page_object(name, _response(), timeout)
    assert time.monotonic() - started < timeout + 1
    assert isinstance(got, Extraction)
    assert got.missing == ["page_object"] and got.fields == {}
    assert len(got.problems) == 1 and problem in got.problems[0]


# --- through the CLI -------------------------------------------------------------------


@pytest.fixture
def crawl_env(
    crawl_env: tuple[dict[str, str], Database[Any], Path], hostile_pages: Path
) -> tuple[dict[str, str], Database[Any], Path]:
    """The shared CLI environment, with the test's page objects importable and allowed."""
    env, db, sources = crawl_env
    env["PYTHONPATH"] = os.pathsep.join([str(hostile_pages), os.environ.get("PYTHONPATH", "")])
    env[PACKAGES_ENV] = "hostile_pages"
    return env, db, sources


def _crawl(env: dict[str, str], url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
         "--mirror", url, *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def test_a_typo_is_a_configuration_error_before_anything_is_fetched(crawl_env: Any) -> None:
    env, _, sources = crawl_env
    path = _demo_with_vendor_page_object(sources, "crawler.extraction.page_objects.demo_vendr")
    with FixtureServer(market="demo", day=1) as server:
        result = _crawl(env, server.url)
        assert server.requests_served == 0
    assert result.returncode == 2, result.stderr[-3000:]
    expected = f"{path}: key pages.vendor.page_object: Value error, "
    assert expected in result.stderr
    assert "has no 'demo_vendr'" in result.stderr


def test_a_page_object_calling_sys_exit_is_a_problem_on_each_page(crawl_env: Any) -> None:
    env, db, sources = crawl_env
    _demo_with_vendor_page_object(sources, "hostile_pages.exits")
    with FixtureServer(market="demo", day=1) as server:
        result = _crawl(env, server.url)
    # Every vendor page failed extraction: a template drift, said plainly, not a wedge.
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run["status"] == "failed"
    assert "template drift on vendor pages" in " ".join(run["reasons"])
    events = db.run_events.find({"run": run["_id"], "kind": "extraction"})
    problems = [e for e in events if e["reason"].startswith("page object")]
    vendor_pages = {p["url"] for p in db.pages.find({"run": run["_id"], "state": "vendor"})}
    assert len(vendor_pages) == 30
    assert {p["url"] for p in problems} == vendor_pages
    exited = "page object hostile_pages.exits raised SystemExit: 3"
    assert all(p["reason"] == exited for p in problems)
    assert db.listing_versions.count_documents({}) > 0  # listings were read as usual


def test_page_objects_module_docstring_says_it_is_code() -> None:
    import crawler.extraction.page_objects as package

    assert "A page object is code" in textwrap.dedent(package.__doc__ or "")
