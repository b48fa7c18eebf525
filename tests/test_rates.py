"""Exchange rates when the market shows none, or shows them elsewhere (issue 11, item 7).

Rows follow what markets print: Russian-language markets quote "1 USD = 92,50 ₽" (the
dollar in roubles, the wrong way round for conversion) and "1 BTC = 6 200 000 ₽"; crypto
markets show a fiat "≈ $150.00" under a BTC price; fiat-only markets show no rate at all,
and then the project's rate table (a daily CSV with its provenance) converts.
"""

from __future__ import annotations

import csv
import doctest
import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from subprocesses import run_cli

from crawler.items import PageItem
from crawler.sources.model import Source
from pipelines.normalise import parse_rate
from pipelines.normalise import rates as rates_module
from pipelines.normalise.rates import KnownRate, hint_rate, invert, known_rates, usd_rate
from pipelines.normalise_pipeline import normalise_page
from pipelines.store.export import export_run
from pipelines.store.model import EntityObservation, Provenance
from pipelines.store.rate_table import (
    RATE_TABLE,
    RateTableError,
    import_rows,
    rates_of_day,
    read_rate_file,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymongo.database import Database

    from pipelines.store.archive import Archive

D = Decimal


def line(text: str, source: str = "market", where: str = "http://m/") -> KnownRate:
    rate = parse_rate(text)
    return KnownRate(rate.base, rate.quote, rate.value, source, f"{source} {text!r} on {where}")


# -- which rate converts a currency, and by which path ---------------------------------
@pytest.mark.parametrize(
    ("currency", "known", "value", "path", "source"),
    [
        # shown the right way round: used as shown
        ("BTC", [line("1 BTC = $67,012.50")], D("67012.50"), "BTC→USD", "market"),
        # the wrong way round ("1 USD = 92,50 ₽"): inverted
        ("RUB", [line("1 USD = 92,50 ₽")], D("0.0108108108108108"), "RUB→USD", "market"),
        ("EUR", [line("USD/EUR 0.925")], D("1.08108108108108"), "EUR→USD", "market"),
        # crossed through the market's own crypto rates
        (
            "RUB",
            [line("1 BTC = $67,000"), line("1 BTC = 6 700 000 ₽")],
            D("0.01"),
            "RUB→BTC→USD",
            "market",
        ),
        (
            "XMR",
            [line("1 XMR = 15 000 ₽"), line("1 USD = 100 ₽")],
            D("150"),
            "XMR→RUB→USD",
            "market",
        ),
        # the rates page is the market speaking, as a page line is
        (
            "RUB",
            [line("1 USD = 92,50 ₽", "rates_page")],
            D("0.0108108108108108"),
            "RUB→USD",
            "rates_page",
        ),
        # a direct rate beats a cross rate
        (
            "RUB",
            [line("1 BTC = $67,000"), line("1 BTC = 6 700 000 ₽"), line("RUB/USD 0.011")],
            D("0.011"),
            "RUB→USD",
            "market",
        ),
        # the market's cross rate beats the table's direct rate
        (
            "RUB",
            [line("USD/RUB 90", "table"), line("1 BTC = $67,000"), line("1 BTC = 6 700 000 ₽")],
            D("0.01"),
            "RUB→BTC→USD",
            "market",
        ),
        # the hint beats the table; the table converts what nothing else can
        (
            "XMR",
            [line("XMR/USD 150", "table"), line("XMR/USD 160", "hint")],
            D("160"),
            "XMR→USD",
            "hint",
        ),
        ("EUR", [line("EUR/USD 1.08", "table")], D("1.08"), "EUR→USD", "table"),
        # mixed: the market's BTC/RUB with the table's BTC/USD
        (
            "RUB",
            [line("1 BTC = 6 700 000 ₽"), line("BTC/USD 67000", "table")],
            D("0.01"),
            "RUB→BTC→USD",
            "market+table",
        ),
        ("USD", [], D(1), "USD", "identity"),
    ],
)
def test_usd_rate(
    currency: str, known: list[KnownRate], value: Decimal, path: str, source: str
) -> None:
    found = usd_rate(currency, known)
    assert found is not None
    assert (found.value, found.path, found.source) == (value, path, source)


@pytest.mark.parametrize(
    ("currency", "known"),
    [
        ("EUR", []),
        ("EUR", [line("1 BTC = $67,000")]),  # no rate touches EUR
        ("RUB", [line("1 BTC = 6 700 000 ₽")]),  # RUB reaches BTC, BTC reaches nothing
        # four steps are too many: RUB→UAH→PLN→EUR→USD
        ("RUB", [line("UAH/RUB 2"), line("PLN/UAH 10"), line("EUR/PLN 4"), line("EUR/USD 1.1")]),
    ],
)
def test_no_usd_rate(currency: str, known: list[KnownRate]) -> None:
    assert usd_rate(currency, known) is None


def test_provenance_names_every_step_and_its_direction() -> None:
    known = [line("1 BTC = $67,000", where="http://m/a"), line("USD/RUB 100", where="http://m/r")]
    found = usd_rate("BTC", known)
    assert found is not None and found.provenance == "market '1 BTC = $67,000' on http://m/a"
    found = usd_rate("RUB", known)
    assert found is not None
    assert found.provenance == "market 'USD/RUB 100' on http://m/r (inverted)"
    assert invert(invert(known[1])).value == D(100)


@pytest.mark.parametrize(
    ("price", "hint", "base", "quote", "value"),
    [
        (
            ("150.00", "USD", "$150.00"),
            ("0.0021", "BTC", "≈ 0.0021 BTC"),
            "BTC",
            "USD",
            D("71428.5714285714"),
        ),
        (
            ("0.0021", "BTC", "0.0021 BTC"),
            ("150.00", "USD", "≈ $150.00"),
            "BTC",
            "USD",
            D("71428.5714285714"),
        ),
        (
            ("9250", "RUB", "9 250 ₽"),
            ("0.05", "XMR", "≈ 0.05 XMR"),
            "RUB",
            "XMR",
            D("0.00000540540540540541"),
        ),
    ],
)
def test_hint_rate(
    price: tuple[str, str, str], hint: tuple[str, str, str], base: str, quote: str, value: Decimal
) -> None:
    def shown(amount: str, currency: str, text: str) -> dict[str, Any]:
        return {"amount": D(amount), "currency": currency, "text": text}

    rate = hint_rate(shown(*price), shown(*hint), "http://m/listing/1")
    assert rate is not None
    assert (rate.base, rate.quote, rate.value, rate.source) == (base, quote, value, "hint")
    assert rate.provenance.endswith("on http://m/listing/1")


def test_hint_rate_refuses_what_is_no_pair() -> None:
    usd = {"amount": D("150"), "currency": "USD", "text": "$150"}
    assert hint_rate(usd, usd, "u") is None
    assert hint_rate(usd, {"text": "≈ ???", "error": "unreadable"}, "u") is None
    assert hint_rate(usd, {"amount": D(0), "currency": "BTC", "text": "0 BTC"}, "u") is None


def test_run_rates_read_back_with_their_provenance() -> None:
    stored = {
        "BTC": {"value": D("67000"), "quote": "USD", "text": "1 BTC = $67,000", "url": "http://m/"},
        "USD/RUB": {
            "value": D("92.5"),
            "quote": "RUB",
            "source": "rates_page",
            "url": "http://m/r",
        },
        "table:EUR/USD": {
            "value": D("1.08"),
            "base": "EUR",
            "quote": "USD",
            "source": "table",
            "provenance": "rate table 2026-11-01: ECB",
        },
    }
    known = {(r.base, r.quote): r for r in known_rates(stored)}
    assert known["BTC", "USD"].provenance == "page line '1 BTC = $67,000' on http://m/"
    assert known["USD", "RUB"].provenance == "rates page on http://m/r"
    assert known["EUR", "USD"].source == "table"


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(rates_module, optionflags=doctest.ELLIPSIS).failed == 0


# -- the price hint: displayed, not versioned -----------------------------------------
SOURCE = {
    "id": "ratesmkt",
    "name": "Rates test market",
    "network": "clearnet",
    "mirrors": ["http://127.0.0.1:1"],
    "rates_page": "/rates",
    "rates": {"css": "ul.rates li.rate::text", "multiple": True, "processors": ["strip"]},
    "follow": {"listing": ["a.listing::attr(href)"]},
    "pages": {
        "index": {"url_regex": "/$", "fields": {"title": {"css": "h1::text"}}},
        "listing": {
            "url_regex": "/listing/[a-z]+$",
            "fields": {
                "listing_id": {"url_regex": "/listing/([a-z]+)$", "required": True},
                "title": {"css": "h1::text", "required": True},
                "price": {"css": "span.price::text", "required": True},
                "price_hint": {"css": "span.hint::text"},
            },
        },
    },
    "politeness": {"concurrency": 4, "delay": 0, "timeout": 10, "retries": 0},
}


def test_price_hint_is_displayed_not_content() -> None:
    source = Source.model_validate(SOURCE)
    item = PageItem(
        source="ratesmkt",
        url="http://m/listing/b",
        kind="listing",
        state="listing",
        fetched_at=datetime(2026, 11, 1, tzinfo=UTC),
        fields={"listing_id": "b", "title": "B", "price": "0.05 XMR", "price_hint": "≈ $8.00"},
    )
    normalise_page(item, source)
    ((_, key, content),) = item.records
    assert key == "b" and "price_hint" not in json.dumps(content, default=str)
    (shown,) = item.displayed
    assert (shown["key"], shown["amount"], shown["currency"]) == ("b", D("8.00"), "USD")
    assert shown["of"]["currency"] == "XMR"


def test_rates_page_needs_a_rates_rule() -> None:
    with pytest.raises(ValueError, match="rates_page needs a `rates` rule"):
        Source.model_validate({k: v for k, v in SOURCE.items() if k != "rates"})


# -- the project rate table -----------------------------------------------------------
HEADER = "date,base,quote,rate,source\n"


def rate_file(tmp_path: Path, text: str, name: str = "rates.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("day,base,quote,rate,source\n", ":1: the header must be date,base,quote,rate,source"),
        (HEADER + "2026-11-1,EUR,USD,1.08,ECB\n", ":2: date '2026-11-1' is not YYYY-MM-DD"),
        (HEADER + "2026-02-30,EUR,USD,1.08,ECB\n", ":2: date '2026-02-30' does not exist"),
        (HEADER + "2026-11-01,€,USD,1.08,ECB\n", ":2: currency '€' is not an ISO 4217 code"),
        (HEADER + "2026-11-01,EUR,EUR,1,ECB\n", ":2: base and quote are both EUR"),
        (HEADER + '2026-11-01,EUR,USD,"1,08",ECB\n', ":2: rate '1,08' is not a plain decimal"),
        (HEADER + "2026-11-01,EUR,USD,0,ECB\n", ":2: rate 0 is not above 0"),
        (HEADER + "2026-11-01,EUR,USD,1.08,\n", ":2: source is empty"),
        (HEADER + "2026-11-01,EUR,USD,1.08\n", ":2: expected 5 columns"),
        (
            HEADER + "2026-11-01,EUR,USD,1.08,ECB\n2026-11-01,EUR,USD,1.09,ECB\n",
            ":3: EUR/USD on 2026-11-01 is 1.09 here but 1.08 on line 2",
        ),
        ("# only a comment\n", "no header"),
    ],
)
def test_bad_rate_files_name_the_line(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(RateTableError) as caught:
        read_rate_file(rate_file(tmp_path, text))
    assert problem in str(caught.value)


def test_rate_table_import_is_idempotent_and_refuses_conflicts(
    tmp_path: Path, db: Database
) -> None:
    text = (
        "# example values\n" + HEADER + "2026-11-01,EUR,USD,1.0800,ECB reference rate, fetched\n"
        "2026-11-01,usd,rub,92.50,CBR\n2026-10-30,BTC,USD,67000,exchange close\n"
    )
    # the CSV quoting of the first row's source is missing on purpose: 6 columns
    with pytest.raises(RateTableError, match=":3: expected 5 columns"):
        read_rate_file(rate_file(tmp_path, text))
    text = text.replace("ECB reference rate, fetched", '"ECB reference rate, fetched"')
    rows = read_rate_file(rate_file(tmp_path, text))
    assert [(r.base, r.quote, r.line) for r in rows] == [
        ("EUR", "USD", 3),
        ("USD", "RUB", 4),
        ("BTC", "USD", 5),
    ]
    assert import_rows(db, rows, file="a.csv") == (3, 0)
    assert import_rows(db, rows, file="a.csv") == (0, 3)  # the same rows again: nothing new
    assert db[RATE_TABLE].count_documents({}) == 3
    doc = db[RATE_TABLE].find_one({"_id": "EUR/USD:2026-11-01"})
    assert doc is not None and doc["source"] == "ECB reference rate, fetched"
    conflict = read_rate_file(
        rate_file(tmp_path, HEADER + "2026-11-02,EUR,USD,1.081,x\n2026-11-01,EUR,USD,1.09,x\n")
    )
    with pytest.raises(RateTableError, match=r"b\.csv:3: EUR/USD on 2026-11-01 is 1\.0800"):
        import_rows(db, conflict, file="b.csv")
    assert db[RATE_TABLE].count_documents({}) == 3  # nothing of the refused file


def test_a_run_takes_its_days_rate_or_the_latest_within_a_week(
    tmp_path: Path, db: Database
) -> None:
    rows = [
        ("2026-11-01", "EUR", "USD", "1.08"),
        ("2026-11-03", "EUR", "USD", "1.09"),
        ("2026-11-06", "EUR", "USD", "1.10"),
        ("2026-10-20", "USD", "RUB", "90"),
    ]
    csv = HEADER + "".join(f"{d},{b},{q},{r},test\n" for d, b, q, r in rows)
    import_rows(db, read_rate_file(rate_file(tmp_path, csv)), file="t.csv")
    assert rates_of_day(db, date(2026, 11, 1))["table:EUR/USD"]["value"] == D("1.08")
    assert rates_of_day(db, date(2026, 11, 5))["table:EUR/USD"]["value"] == D("1.09")
    assert rates_of_day(db, date(2026, 11, 6))["table:EUR/USD"]["date"] == "2026-11-06"
    assert rates_of_day(db, date(2026, 10, 31)) == {}  # USD/RUB of 10-20: 11 days old
    assert "table:USD/RUB" in rates_of_day(db, date(2026, 10, 27))


def test_the_table_converts_only_what_the_market_cannot(
    tmp_path: Path, archive: Archive, db: Database
) -> None:
    today = datetime.now(UTC)
    csv = HEADER + (
        f"{today.date()},EUR,USD,1.08,ECB reference rate (test)\n"
        f"{(today - timedelta(days=2)).date()},USD,RUB,90,CBR (test)\n"
        f"{today.date()},BTC,USD,1,a wrong table rate the market's own must beat\n"
    )
    import_rows(db, read_rate_file(rate_file(tmp_path, csv)), file="t.csv")
    run = archive.open_run("mkt", parser_version="p1", started_at=today)
    archive.record_rates(run, {"BTC": {"value": D("67000"), "quote": "USD", "source": "market"}})
    prov = Provenance("http://m/l", "ab" * 32, today, "p1")
    prices = {"b": ("0.001", "BTC"), "e": ("10.00", "EUR"), "r": ("900", "RUB")}
    archive.record_entities(
        run,
        "listing",
        [
            EntityObservation(k, {"price": {"amount": D(a), "currency": c, "text": a}}, prov)
            for k, (a, c) in prices.items()
        ],
    )
    archive.close_run(run, status="complete", counts={})
    usd = {line["key"]: line["usd"] for line in export_run(db, "mkt") if line["kind"] == "listing"}
    assert (usd["b"]["amount"], usd["b"]["rate_source"]) == ("67.00", "market")
    assert (usd["e"]["amount"], usd["e"]["rate_source"]) == ("10.80", "table")
    assert usd["e"]["rate_provenance"] == f"rate table {today.date()}: ECB reference rate (test)"
    assert (usd["r"]["amount"], usd["r"]["rate_path"]) == ("10.00", "RUB→USD")
    assert usd["r"]["rate_provenance"].endswith("CBR (test) (inverted)")
    # a row imported after the run closed does not change what the run says
    late = rate_file(tmp_path, HEADER + f"{today.date()},GBP,USD,1.3,late\n", "late.csv")
    import_rows(db, read_rate_file(late), file="late.csv")
    header = next(export_run(db, "mkt"))
    assert "table:GBP/USD" not in header["rates"]


def test_cli_imports_and_refuses_with_the_line(
    tmp_path: Path, crawl_env: tuple[dict[str, str], Database[Any], Path]
) -> None:
    env, db, _ = crawl_env
    good = rate_file(tmp_path, HEADER + "2026-11-01,EUR,USD,1.08,ECB (test)\n")
    out = run_cli("rates", "import", str(good), env=env).stdout
    assert "1 rate(s) imported, 0 already" in out
    out = run_cli("rates", "import", str(good), env=env).stdout
    assert "0 rate(s) imported, 1 already" in out
    bad = rate_file(tmp_path, HEADER + "2026-11-01,EUR,USD,1.09,other\n", "bad.csv")
    result = run_cli("rates", "import", str(bad), env=env, code=2)
    assert f"{bad}:2: EUR/USD on 2026-11-01 is 1.08" in result.stderr
    assert "nothing imported" in result.stderr
    run_cli("rates", "import", str(tmp_path / "missing.csv"), env=env, code=2)
    assert db[RATE_TABLE].count_documents({}) == 1


# -- a crawl: the rates page first, then every kind of rate --------------------------
class _Site:
    """A tiny market: a rates page, an index, three listings; pages editable while up."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str]] = {}
        self.log: list[str] = []  # the paths asked for, in order
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.log.append(self.path)
                status, body = site.pages.get(self.path, (404, "<h1>not found</h1>"))
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def listing(self, key: str, price: str, hint: str = "") -> None:
        shown = f'<span class="hint">{hint}</span>' if hint else ""
        body = f'<h1>Item {key}</h1><span class="price">{price}</span>{shown}'
        self.pages[f"/listing/{key}"] = (200, body)


@pytest.fixture
def site() -> Iterator[_Site]:
    market = _Site()
    market.pages["/rates"] = (
        200,
        '<ul class="rates"><li class="rate">1 USD = 92,50 ₽</li>'
        '<li class="rate">1 BTC = 6 200 000 ₽</li></ul>',
    )
    links = "".join(f'<a class="listing" href="/listing/{k}">{k}</a>' for k in "abcd")
    market.pages["/"] = (200, f"<h1>Market</h1>{links}")
    market.listing("a", "9 250 ₽")  # RUB: the rates page's USD/RUB, inverted
    market.listing("b", "0.001 BTC")  # BTC: crossed through RUB on the rates page
    market.listing("c", "0.05 XMR", "≈ $8.00")  # XMR: only the hint knows
    market.listing("d", "12,00 €")  # EUR: only the table knows
    market.thread.start()
    yield market
    market.server.shutdown()
    market.server.server_close()


def _listings(env: dict[str, str], run: str) -> dict[str, Any]:
    out = run_cli("export", "ratesmkt", "--run", run, env=env).stdout
    lines = [json.loads(text) for text in out.splitlines()]
    return {line["key"]: line for line in lines if line["kind"] == "listing"}


def test_crawl_reads_the_rates_page_first_and_converts_with_every_kind_of_rate(
    tmp_path: Path, site: _Site, crawl_env: tuple[dict[str, str], Database[Any], Path]
) -> None:
    env, db, sources = crawl_env
    (sources / "ratesmkt.yaml").write_text(yaml.safe_dump({**SOURCE, "mirrors": [site.url]}))
    today = datetime.now(UTC).date()
    table = HEADER + (
        f"{today},EUR,USD,1.08,ECB reference rate (test values)\n"
        f"{today - timedelta(days=1)},USD,RUB,90,CBR (test values)\n"
    )
    run_cli("rates", "import", str(rate_file(tmp_path, table)), env=env)

    run_cli("crawl", "ratesmkt", env=env)
    run1 = db["runs"].find_one({"source": "ratesmkt", "seq": 1})
    assert run1 is not None and run1["status"] == "complete", run1
    pages = list(db["pages"].find({"run": run1["_id"]}).sort("fetched_at", 1))
    assert pages[0]["url"] == f"{site.url}/rates"  # fetched first
    assert pages[0]["state"] == "rates"
    assert pages[0]["fetched_at"] <= min(p["fetched_at"] for p in pages[1:])
    assert site.log[:2] == ["/rates", "/"]  # the start page only once the rates were in
    assert all(p["state"] in ("index", "listing") for p in pages[1:])

    listings = first = _listings(env, run1["_id"])
    a, b, c, d = (listings[k]["usd"] for k in "abcd")
    assert (a["amount"], a["rate_source"], a["rate_path"]) == ("100.00", "rates_page", "RUB→USD")
    assert a["rate_provenance"] == f"rates page on {site.url}/rates: '1 USD = 92,50 ₽' (inverted)"
    assert (b["amount"], b["rate_path"]) == ("67.03", "BTC→RUB→USD")
    assert (c["amount"], c["rate_source"], c["rate_path"]) == ("8.00", "hint", "XMR→USD")
    assert c["rate_provenance"] == f"hint '≈ $8.00' beside '0.05 XMR' on {site.url}/listing/c"
    assert listings["c"]["price_hint"] == {"amount": "8.00", "currency": "USD", "text": "≈ $8.00"}
    assert "price_hint" not in listings["a"]
    assert (d["amount"], d["rate_source"]) == ("12.96", "table")
    assert d["rate_provenance"] == f"rate table {today}: ECB reference rate (test values)"

    # The hint moves with the rate; the listing does not change: no new version.
    site.listing("c", "0.05 XMR", "≈ $8.40")
    site.pages["/rates"] = (500, "<h1>internal error</h1>")  # and the rates page fails
    run_cli("crawl", "ratesmkt", env=env)
    run2 = db["runs"].find_one({"source": "ratesmkt", "seq": 2})
    assert run2 is not None and run2["status"] == "complete", run2
    events = list(db["run_events"].find({"run": run2["_id"], "kind": "rates"}))
    assert len(events) == 1 and "fall back to the project rate table" in events[0]["reason"]
    listings = _listings(env, run2["_id"])
    assert (listings["c"]["version"], listings["c"]["first_seen_run"]) == (1, run1["_id"])
    assert listings["c"]["price_hint"]["amount"] == "8.40"
    assert listings["c"]["usd"]["amount"] == "8.40"
    a = listings["a"]["usd"]  # no rates page: the table's USD/RUB of yesterday, inverted
    assert (a["amount"], a["rate_source"], a["rate_path"]) == ("102.78", "table", "RUB→USD")
    assert listings["b"]["usd"] is None  # BTC: neither the market nor the table has it
    # the published table carries the hint and where each rate came from
    run_cli(
        "export",
        "ratesmkt",
        "--run",
        "2",
        "--format",
        "csv",
        "--output",
        str(tmp_path / "t"),
        env=env,
    )
    with (tmp_path / "t" / "listings.csv").open(encoding="utf-8") as handle:
        rows = {row["key"]: row for row in csv.DictReader(handle)}
    assert (rows["c"]["price_hint_amount"], rows["c"]["price_hint_currency"]) == ("8.40", "USD")
    assert (rows["a"]["usd_rate_source"], rows["a"]["usd_rate_path"]) == ("table", "RUB→USD")
    assert rows["a"]["usd_rate_provenance"].startswith(f"rate table {today - timedelta(days=1)}")
    # run 1 still says what it said
    again = _listings(env, run1["_id"])
    assert again["c"]["price_hint"]["amount"] == "8.00"
    assert again["a"]["usd"] == first["a"]["usd"]
