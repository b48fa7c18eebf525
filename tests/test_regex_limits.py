"""A source's patterns run under a time limit: a catastrophic one costs a page, not the crawl.

`^(a|a)+$` over forty "a" and a "!" backtracks 2^40 times; with Python's `re` a detector
like that hung the crawl on its first page, SIGTERM ignored. The `regex` package keeps
Python's syntax (backreferences, lookaround) and stops after `patterns.TIMEOUT`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from parsel import Selector
from scrapy.http import HtmlResponse

from crawler.extraction import patterns
from crawler.extraction.blueprint import extract_page
from crawler.extraction.patterns import PatternTimeout
from crawler.pagestate import classify
from crawler.sources.loader import load_source
from crawler.sources.model import FieldRule, PageBlueprint, StateDetector
from fixtures.hostile import BACKTRACK_BODY
from fixtures.market import truth
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from pathlib import Path


CATASTROPHIC = r"^(a|a)+$"


@pytest.fixture(autouse=True)
def short_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patterns, "TIMEOUT", 0.3)


def test_a_catastrophic_pattern_stops_at_the_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(PatternTimeout) as caught:
        patterns.search(CATASTROPHIC, BACKTRACK_BODY, key="states[0].text_regex", url="u")
    assert time.monotonic() - started < 2.0
    assert str(caught.value).startswith(
        "states[0].text_regex: regular expression '^(a|a)+$' took more than 0.3 s on u"
    )


@pytest.mark.parametrize(
    ("pattern", "text", "kept"),
    [
        (r"(?<=\$)(\d+)", "costs $45", "45"),  # lookbehind
        (r"(?<!\d)(\d{3})(?!\d)", "id 123 x", "123"),  # lookahead
        (r"(\w)\1", "hello", "l"),  # backreference
        (r"(?P<c>[a-z])(?P=c)", "aabb", "a"),  # named backreference
        (r"(?i)of\s+([\d,]+)\s+LISTINGS", "1-20 of 1,204 listings", "1,204"),
        (r"(?s)<p>(.*?)</p>", "<p>a\nb</p>", "a\nb"),
    ],
)
def test_python_syntax_is_kept(pattern: str, text: str, kept: str) -> None:
    """What real source files use, and RE2 would refuse, still works."""
    FieldRule(css="x", regex=pattern)  # validated on load with the same engine
    match = patterns.search(pattern, text, key="k", url="u")
    assert match is not None and match.group(1) == kept


def _page(body: str, url: str = "http://m.example/category/x") -> HtmlResponse:
    return HtmlResponse(url, body=body.encode(), headers={"Content-Type": "text/html"})


@pytest.mark.parametrize(
    ("detector", "key"),
    [
        (StateDetector(state="captcha", text_regex=CATASTROPHIC), "states[1].text_regex"),
        (StateDetector(state="captcha", url_regex=r"/(a|a)+$"), "states[1].url_regex"),
    ],
)
def test_a_detector_out_of_time_names_its_key(detector: StateDetector, key: str) -> None:
    demo = load_source("demo")
    harmless = StateDetector(state="login_wall", css="form#login")
    source = demo.model_copy(update={"states": [harmless, detector]})
    page = _page(BACKTRACK_BODY, url="http://m.example/" + "a" * 40 + "!")
    with pytest.raises(PatternTimeout, match=rf"^{key.replace('[', '.').replace(']', '.')}"):
        classify(source, page, "index")


def test_a_field_out_of_time_is_a_problem_and_the_rest_is_read() -> None:
    blueprint = PageBlueprint(
        fields={
            "title": FieldRule(css="h1::text"),
            "price": FieldRule(css="p::text", regex=CATASTROPHIC),
        },
        lists={
            "tiers": {"css": "li", "fields": {"q": FieldRule(css="::text", regex=CATASTROPHIC)}}
        },
    )
    html = f"<h1>Title</h1><p>{BACKTRACK_BODY}</p><ul>" + f"<li>{BACKTRACK_BODY}</li>" * 50
    started = time.monotonic()
    got = extract_page(blueprint, Selector(text=html + "</ul>"), "http://m.example/listing/1")
    # Each pattern runs out of time once per page, not once per row: 51 timeouts of 0.3 s
    # would take 15 s; two take 0.6 s (the bound leaves room for a loaded machine).
    assert time.monotonic() - started < 8.0
    assert got.fields["title"] == "Title" and got.fields["price"] is None
    assert [p.split(":")[0] for p in got.problems] == [
        "fields.price.regex",
        "lists.tiers.fields.q.regex",
    ]
    assert all(p.endswith("page abandoned") for p in got.problems)


# --- through the CLI -------------------------------------------------------------------


def with_catastrophic_detector(sources: Path) -> int:
    """The demo source with the catastrophic detector and the backtracking page to start."""
    path = sources / "demo.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["states"].append({"state": "captcha", "text_regex": CATASTROPHIC})
    data["start_pages"] = ["/hostile/backtrack", "/"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return len(data["states"]) - 1


def test_a_catastrophic_detector_abandons_its_page_and_the_crawl_completes(
    crawl_env: Any,
) -> None:
    env, db, sources = crawl_env
    number = with_catastrophic_detector(sources)
    with FixtureServer(market="demo", day=1) as server:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "--log-level", "WARNING", "crawl", "demo",
             "--mirror", server.url],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert elapsed < 120, result.stderr[-2000:]
    run = db.runs.find_one(sort=[("seq", -1)])
    assert run is not None, result.stdout + result.stderr[-3000:]
    page = db.pages.find_one({"run": run["_id"], "url": f"{server.url}/hostile/backtrack"})
    assert page is not None and page["state"] == "error"
    assert page["error"].startswith(
        f"PatternTimeout: states[{number}].text_regex: regular expression '^(a|a)+$' took "
        "more than 2 s on"
    )
    listings = {d["key"] for d in db.listing_versions.find({}, {"key": 1})}
    assert listings == {t["listing_id"] for t in truth("demo", 1)["listings"]}


@pytest.mark.parametrize(
    "build",
    [
        lambda x: FieldRule(xpath=x),
        lambda x: StateDetector(state="captcha", xpath=x),
        lambda x: PageBlueprint(lists={"tiers": {"xpath": x, "fields": {}}}),
    ],
)
def test_xpath_regex_functions_are_refused_on_load(build: Any) -> None:
    """lxml runs EXSLT's re: functions with Python's `re`, outside the time limit: a
    backtracking pattern there would hang the crawl again, so a source cannot use them."""
    with pytest.raises(ValueError, match="run without a time limit"):
        build("//p[re:test(., '^(a|a)+$')]/text()")
    build("//p[contains(., 're:test')]/text()")  # the words alone are harmless text
