"""The fixture server fights back as real markets do, over real HTTP on loopback.

Rows come from what crawlers meet on dark-web markets: login walls and sessions that expire
mid-crawl, DDoS-filter queues, CAPTCHAs, 429/503 storms with Retry-After, slow and hung
answers, maintenance pages, a mirror that dies mid-crawl and pagination that never ends.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import httpx2 as httpx
import pytest
from parsel import Selector

from fixtures.hostile import (
    ABSURD_PRICES,
    DEEP_LEVELS,
    GZIP_BOMB_BYTES,
    GZIP_BOMB_PATH,
    HOSTILE_LINKED,
    HOSTILE_LINKS_PATH,
    OUTCOMES,
    OVERSIZED_TIERS,
    UNDECODABLE,
    Hostility,
)
from fixtures.market import build_world, render_grid, render_shop
from fixtures.market.render import PAGE_SIZE
from fixtures.server import FixtureServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from email.message import Message

    from fixtures.market.world import Listing

WORLD = build_world("demo", 1)
LISTING = next(iter(WORLD.listings))
VENDOR = next(iter(WORLD.vendors))
# The leaf with the most listings (several pages) and a parent category (one empty page).
DEEP = max(WORLD.categories, key=lambda slug: len(WORLD.listings_in(slug)))
DEEP_PAGES = -(-len(WORLD.listings_in(DEEP)) // PAGE_SIZE)
PARENT = WORLD.top_categories()[0].slug
SESSION = {"session": "s3cr3t"}
# The grid's leaf with the most listings (several "Load more" offsets), a parent category
# (tiles only) and a vendor; the shop with the most pages and the one with the fewest.
GRID = build_world("grid", 1)
GRID_LEAF = max(GRID.categories, key=lambda slug: len(GRID.listings_in(slug)))
GRID_LAST = (len(GRID.listings_in(GRID_LEAF)) - 1) // render_grid.PAGE_SIZE * render_grid.PAGE_SIZE
GRID_PARENT = GRID.top_categories()[0].slug
SHOP = build_world("shop", 1)
BIG_SHOP = max(SHOP.vendors, key=lambda vendor: len(SHOP.listings_of(vendor)))
BIG_PAGES = -(-len(SHOP.listings_of(BIG_SHOP)) // render_shop.PAGE_SIZE)
SMALL_SHOP = min(SHOP.vendors, key=lambda vendor: len(SHOP.listings_of(vendor)))


def _item_path(listing: Listing) -> str:
    """A shop item's page: `/shop/<vendor>/item/<n>` for listing `<vendor>-<n>`."""
    return f"/shop/{listing.vendor_id}/item/{listing.listing_id.rsplit('-', 1)[1]}"


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def page(self) -> Selector:
        return Selector(text=self.body.decode(self.headers.get_content_charset() or "utf-8"))

    @property
    def title(self) -> str:
        return self.page.css("title::text").get("")


def _get(server: FixtureServer, path: str = "/", cookies: dict[str, str] | None = None) -> Reply:
    cookie = "; ".join(f"{name}={value}" for name, value in (cookies or {}).items())
    request = urllib.request.Request(
        server.url + path, headers={"Cookie": cookie} if cookie else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def _outcome(reply: Reply) -> str:
    """What a crawler's page-state guard would see (the detectors of config/sources/demo.yaml)."""
    page = reply.page
    if reply.status == 429:
        return "429"
    if reply.status == 503:
        return "maintenance" if b"down for maintenance" in reply.body else "503"
    if page.css("form#login"):
        return "login"
    if page.css("div#queue"):
        return "queue"
    if page.css("form.captcha, img.captcha"):
        return "captcha"
    assert reply.status == 200, reply.status
    return "content"


@pytest.fixture
def serve() -> Iterator[Callable[..., FixtureServer]]:
    started: list[FixtureServer] = []

    def start(hostility: Hostility | None = None, market: str = "demo") -> FixtureServer:
        server = FixtureServer(market=market, day=1, hostility=hostility).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


CHALLENGES = [
    # id, hostility, cookies, status, headers, CSS markers, title, stats key
    (
        "login wall, no cookie",
        Hostility(session_cookie="s3cr3t"),
        {},
        200,
        {"Set-Cookie": None, "Location": None},
        [
            'form#login[method="post"][action="/login"]',
            'form#login input[name="username"]',
            'form#login input[type="password"][name="password"]',
        ],
        "Login | Demo Market",
        "login",
    ),
    (
        "login wall, wrong cookie",
        Hostility(session_cookie="s3cr3t"),
        {"session": "guessed"},
        200,
        {"Location": None},
        ["form#login"],
        "Login | Demo Market",
        "login",
    ),
    (
        "login wall, right cookie",
        Hostility(session_cookie="s3cr3t"),
        SESSION,
        200,
        {},
        ["header a.logo", "nav.categories a.category"],
        "Home | Demo Market",
        "content",
    ),
    (
        "DDoS queue",
        Hostility(queue_seconds=2.5),
        {},
        200,
        {"Set-Cookie": "queue_pass=pass-000001; Path=/", "Retry-After": None},
        ['meta[http-equiv="refresh"][content="3"]', "div#queue"],
        "Please wait | DDoS protection",
        "queue",
    ),
    (
        "captcha",
        Hostility(captcha_every=1),
        {},
        200,
        {},
        ['form.captcha img.captcha[src="/captcha.png"]'],
        "Security check | Demo Market",
        "captcha",
    ),
    (
        "429 storm",
        Hostility(rate_limit=(1, 5), retry_after=7),
        {},
        429,
        {"Retry-After": "7"},
        [],
        "429 Too many requests",
        "429",
    ),
    (
        "503 storm",
        Hostility(unavailable=(1, 5)),
        {},
        503,
        {"Retry-After": "1"},
        [],
        "503 Service temporarily unavailable",
        "503",
    ),
    (
        "maintenance",
        Hostility(maintenance=True),
        {},
        503,
        {"Retry-After": None},
        [],
        "Maintenance | Demo Market",
        "maintenance",
    ),
    ("all off", Hostility(), {}, 200, {}, ["nav.categories"], "Home | Demo Market", "content"),
]


@pytest.mark.parametrize(
    ("hostility", "cookies", "status", "headers", "markers", "title", "outcome"),
    [pytest.param(*row[1:], id=str(row[0])) for row in CHALLENGES],
)
def test_challenge_pages(
    serve: Callable[..., FixtureServer],
    hostility: Hostility,
    cookies: dict[str, str],
    status: int,
    headers: dict[str, str | None],
    markers: list[str],
    title: str,
    outcome: str,
) -> None:
    server = serve(hostility)
    reply = _get(server, "/", cookies)
    assert reply.status == status
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    for name, value in headers.items():
        assert reply.headers.get(name) == value, name
    for marker in markers:
        assert reply.page.css(marker), marker
    assert reply.title == title
    assert _outcome(reply) == outcome
    assert server.stats == {**dict.fromkeys(OUTCOMES, 0), outcome: 1}
    text = reply.body.decode("utf-8")
    assert ("Too many requests" in text) == (outcome == "429")
    assert ("Service temporarily unavailable" in text) == (outcome == "503")
    assert ("down for maintenance" in text) == (outcome == "maintenance")
    if outcome != "content":
        assert not reply.page.css("nav.categories, a.listing-link, a.vendor-link")


C, LOGIN, CAPTCHA = "content", "login", "captcha"

SEQUENCES = [
    # id, hostility, cookies sent with every request, outcome of requests 1, 2, 3…
    ("all off", Hostility(), {}, [C, C, C]),
    ("captcha every 3rd", Hostility(captcha_every=3), {}, [C, C, CAPTCHA, C, C, CAPTCHA]),
    ("429 on requests 2-3", Hostility(rate_limit=(2, 4)), {}, [C, "429", "429", C, C]),
    ("503 on requests 1-2", Hostility(unavailable=(1, 3)), {}, ["503", "503", C]),
    (
        "maintenance before everything",
        Hostility(maintenance=True, rate_limit=(1, 9), captcha_every=1, session_cookie="x"),
        {},
        ["maintenance"] * 3,
    ),
    (
        "429 before 503 before captcha",
        Hostility(rate_limit=(1, 3), unavailable=(2, 4), captcha_every=1),
        {},
        ["429", "429", "503", CAPTCHA],
    ),
    (
        "captcha before login wall",
        Hostility(captcha_every=2, session_cookie="s3cr3t"),
        {},
        [LOGIN, CAPTCHA, LOGIN, CAPTCHA],
    ),
    (
        "challenges do not use up the session",
        Hostility(session_cookie="s3cr3t", session_expires_after=3, captcha_every=2),
        SESSION,
        [C, CAPTCHA, C, CAPTCHA, C, CAPTCHA, LOGIN, CAPTCHA, LOGIN],
    ),
    (
        "session expires after exactly 2 pages",
        Hostility(session_cookie="s3cr3t", session_expires_after=2),
        SESSION,
        [C, C, LOGIN, LOGIN],
    ),
    (
        "storms do not use up the session",
        Hostility(session_cookie="s3cr3t", session_expires_after=1, unavailable=(1, 3)),
        SESSION,
        ["503", "503", C, LOGIN],
    ),
]


@pytest.mark.parametrize(
    ("hostility", "cookies", "expected"),
    [pytest.param(*row[1:], id=str(row[0])) for row in SEQUENCES],
)
def test_request_sequences(
    serve: Callable[..., FixtureServer],
    hostility: Hostility,
    cookies: dict[str, str],
    expected: list[str],
) -> None:
    server = serve(hostility)
    seen = [_outcome(_get(server, "/", cookies)) for _ in expected]
    assert seen == expected
    counts = {key: seen.count(key) for key in OUTCOMES}
    assert server.stats == counts
    assert server.requests_served == len(expected) == sum(server.stats.values())


def test_session_expiry_is_counted_across_threads(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(session_cookie="s3cr3t", session_expires_after=10))
    with ThreadPoolExecutor(max_workers=6) as pool:
        seen = list(pool.map(lambda _: _outcome(_get(server, "/", SESSION)), range(30)))
    assert seen.count(C) == 10
    assert seen.count(LOGIN) == 20
    assert _outcome(_get(server, f"/listing/{LISTING}", SESSION)) == LOGIN
    assert server.stats["content"] == 10


def test_queue_pass_is_valid_only_after_queue_seconds(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(queue_seconds=0.5))
    first = _get(server)
    assert _outcome(first) == "queue"
    assert first.headers["Set-Cookie"] == "queue_pass=pass-000001; Path=/"
    assert first.page.css('meta[http-equiv="refresh"]::attr(content)').get() == "1"
    early = _get(server, "/", {"queue_pass": "pass-000001"})
    assert _outcome(early) == "queue"
    assert early.headers["Set-Cookie"] is None  # the same pass, not a new one
    forged = _get(server, "/", {"queue_pass": "forged"})
    assert forged.headers["Set-Cookie"] == "queue_pass=pass-000002; Path=/"
    time.sleep(0.6)
    assert _outcome(_get(server, "/", {"queue_pass": "pass-000001"})) == C
    assert _outcome(_get(server, "/vendors", {"queue_pass": "pass-000002"})) == C
    assert _outcome(_get(server)) == "queue"  # a new client queues too
    assert server.stats["queue"] == 4


def test_queue_lets_a_cookie_keeping_client_through(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(queue_seconds=0.5))
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/").text.count('id="queue"') == 1
        time.sleep(0.6)
        reply = client.get(f"/listing/{LISTING}")
    assert reply.status_code == 200
    assert Selector(text=reply.text).css("h1.listing-title")


def test_media_bypasses_challenges(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(maintenance=True, session_cookie="x", captcha_every=1))
    with urllib.request.urlopen(f"{server.url}/photo/{LISTING}", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.read().startswith(b"\x89PNG")
    assert _outcome(_get(server)) == "maintenance"


def test_slow_requests_are_delayed_then_answered(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(slow_every=2, slow_seconds=0.4))
    elapsed, outcomes = [], []
    for _ in range(4):
        started = time.monotonic()
        outcomes.append(_outcome(_get(server)))
        elapsed.append(time.monotonic() - started)
    assert outcomes == [C] * 4
    assert elapsed[1] >= 0.4 and elapsed[3] >= 0.4
    assert elapsed[0] < 0.3 and elapsed[2] < 0.3
    assert server.stats["slow"] == 2 and server.stats["content"] == 4


def test_hung_requests_close_without_a_response(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(hang_every=2, hang_seconds=0.3))
    assert _outcome(_get(server)) == C
    connection = http.client.HTTPConnection("127.0.0.1", server.bound_port, timeout=5)
    started = time.monotonic()
    connection.request("GET", "/")
    with pytest.raises(http.client.RemoteDisconnected):
        connection.getresponse()
    connection.close()
    assert time.monotonic() - started >= 0.3
    assert _outcome(_get(server)) == C
    assert server.stats["timeout"] == 1 and server.stats["content"] == 2


def test_hung_request_times_the_client_out_and_stop_does_not_wait() -> None:
    server = FixtureServer(hostility=Hostility(hang_every=1)).start()  # hangs for 30 s
    try:
        with pytest.raises(TimeoutError):
            urllib.request.urlopen(server.url, timeout=0.3)
    finally:
        started = time.monotonic()
        server.stop()
    assert time.monotonic() - started < 2
    assert server.stats["timeout"] == 1


def test_mirror_dies_after_n_requests_and_revives(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(die_after=3))
    port = server.bound_port
    kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    kept_alive.request("GET", "/")
    assert kept_alive.getresponse().read()
    assert _outcome(_get(server)) == C
    kept_alive.request("GET", "/vendors")  # the third request is answered, then it dies
    third = kept_alive.getresponse()
    assert (third.status, bool(third.read())) == (200, True)
    for _ in range(2):
        with pytest.raises(urllib.error.URLError) as refused:
            _get(server)
        assert isinstance(refused.value.reason, ConnectionRefusedError)
    kept_alive.request("GET", "/")  # an open connection is closed unanswered
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        kept_alive.getresponse()
    kept_alive.close()
    assert server.stats["refused"] == 1
    server.revive()
    assert server.bound_port == port
    assert [_outcome(_get(server)) for _ in range(4)] == [C] * 4  # it does not die twice
    assert server.stats["content"] == 7
    assert server.requests_served == 8


def test_a_stopped_mirror_keeps_its_url() -> None:
    server = FixtureServer(hostility=Hostility(die_after=1))
    with pytest.raises(RuntimeError, match="not started"):
        server.url  # noqa: B018
    with server:
        url = server.url
        assert _outcome(_get(server)) == C
        assert server.url == url  # dead, but still its address
    assert server.url == url


def _category(server: FixtureServer, slug: str, page: int) -> Selector:
    reply = _get(server, f"/category/{slug}?page={page}")
    assert reply.status == 200, (slug, page)
    return reply.page


def test_without_the_trap_the_last_page_has_no_next(serve: Callable[..., FixtureServer]) -> None:
    server = serve()
    assert DEEP_PAGES >= 3
    assert _category(server, DEEP, DEEP_PAGES - 1).css("nav.pagination a.next")
    assert not _category(server, DEEP, DEEP_PAGES).css("nav.pagination a.next")
    assert _get(server, f"/category/{DEEP}?page={DEEP_PAGES + 1}").status == 404


def test_pagination_trap_never_ends(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(pagination_trap=True))
    path, seen, listings = f"/category/{DEEP}", 0, set()
    for page in range(1, DEEP_PAGES + 4):
        reply = _get(server, path)
        assert reply.status == 200
        cards = reply.page.css("div.listing-card a.listing-link::attr(href)").getall()
        listings.update(cards)
        assert (len(cards) == 0) == (page > DEEP_PAGES), page
        assert reply.page.css("h1.category-title::text").get() == WORLD.categories[DEEP].name
        assert reply.page.css("nav.categories a.category")  # the normal page frame
        total = len(WORLD.listings_in(DEEP))
        assert reply.page.css("p.result-count::text").re_first(r"of (\d+) listings") == str(total)
        assert reply.page.css("nav.pagination span.current::text").get() == str(page)
        path = reply.page.css("nav.pagination a.next::attr(href)").get("")
        assert path == f"/category/{DEEP}?page={page + 1}"
        seen += 1
    assert listings == {f"/listing/{item.listing_id}" for item in WORLD.listings_in(DEEP)}
    assert server.stats["trap"] == 3 and server.stats["content"] == seen
    assert _category(server, PARENT, 1).css("nav.pagination a.next::attr(href)").get() == (
        f"/category/{PARENT}?page=2"
    )
    assert _get(server, f"/category/{DEEP}?page=0").status == 404
    assert _get(server, "/category/no-such-category?page=9").status == 404


def test_grid_without_the_trap_the_last_offset_has_no_load_more(
    serve: Callable[..., FixtureServer],
) -> None:
    server = serve(market="grid")
    assert GRID_LAST >= render_grid.PAGE_SIZE
    before = _get(server, f"/c/{GRID_LEAF}?offset={GRID_LAST - render_grid.PAGE_SIZE}")
    assert before.page.css("a.load-more::attr(href)").get() == f"?offset={GRID_LAST}"
    assert not _get(server, f"/c/{GRID_LEAF}?offset={GRID_LAST}").page.css("a.load-more")


def test_grid_pagination_trap_never_ends(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(pagination_trap=True), market="grid")
    total = len(GRID.listings_in(GRID_LEAF))
    url, seen, listings = f"{server.url}/c/{GRID_LEAF}", 0, set()
    for offset in range(0, GRID_LAST + 4 * render_grid.PAGE_SIZE, render_grid.PAGE_SIZE):
        assert url == f"{server.url}/c/{GRID_LEAF}" + (f"?offset={offset}" if offset else "")
        reply = _get(server, url.removeprefix(server.url))
        assert reply.status == 200
        cards = reply.page.css("div.grid article.card a.card-link::attr(href)").getall()
        listings.update(cards)
        assert (len(cards) == 0) == (offset > GRID_LAST), offset
        assert reply.page.css("h1.page-title::text").get() == GRID.categories[GRID_LEAF].name
        assert reply.page.css("nav.cats a")  # the normal page frame
        assert reply.page.css("p.result-count::text").get() == f"{total} results"
        assert bool(reply.page.css("a.vendor")) == (offset <= GRID_LAST)  # nothing past the end
        more = reply.page.css("a.load-more::attr(href)").getall()
        assert more == [f"?offset={offset + render_grid.PAGE_SIZE}"], offset
        url = urljoin(url, more[0])
        seen += 1
    assert listings == {render_grid.listing_url(item) for item in GRID.listings_in(GRID_LEAF)}
    assert server.stats["trap"] == 3 and server.stats["content"] == seen
    # A parent category shows tiles only: no "Load more" to trap with.
    assert not _get(server, f"/c/{GRID_PARENT}").page.css("a.load-more")
    assert _get(server, f"/c/{GRID_LEAF}?offset=x").status == 404
    assert _get(server, "/c/no-such-category?offset=96").status == 404
    assert server.stats["trap"] == 3


def test_shop_without_the_trap_the_last_page_has_no_next(
    serve: Callable[..., FixtureServer],
) -> None:
    server = serve(market="shop")
    assert BIG_PAGES >= 3
    assert _get(server, f"/shop/{BIG_SHOP}?page={BIG_PAGES - 1}").page.css("a.suivant")
    assert not _get(server, f"/shop/{BIG_SHOP}?page={BIG_PAGES}").page.css("a.suivant")
    assert _get(server, f"/shop/{BIG_SHOP}?page={BIG_PAGES + 1}").status == 404


def test_shop_pagination_trap_never_ends(serve: Callable[..., FixtureServer]) -> None:
    server = serve(Hostility(pagination_trap=True), market="shop")
    vendor = SHOP.vendors[BIG_SHOP]
    path, seen, listings = f"/shop/{BIG_SHOP}", 0, set()
    for page in range(1, BIG_PAGES + 4):
        reply = _get(server, path)
        assert reply.status == 200
        items = reply.page.css("a.article::attr(href)").getall()
        listings.update(items)
        assert (len(items) == 0) == (page > BIG_PAGES), page
        assert reply.page.css("h1.boutique-nom::text").get() == vendor.name
        assert reply.page.css("div#entete ul.cours li.cours")  # the normal page frame
        # Only the vendor page (a shop's first page) has the profile; nothing past the end
        # links a shop or an item, or looks like a vendor page.
        assert bool(reply.page.css("div.profil, pre.cle-pgp")) == (page == 1), page
        assert not reply.page.css("a.boutique")
        nav = reply.page.css("div.pages")
        assert nav.css("::text").get("").startswith(f"Page {page} sur {BIG_PAGES}")
        path = nav.css("a.suivant::attr(href)").get("")
        assert path == f"/shop/{BIG_SHOP}?page={page + 1}"
        seen += 1
    assert listings == {_item_path(item) for item in SHOP.listings_of(BIG_SHOP)}
    assert server.stats["trap"] == 3 and server.stats["content"] == seen
    # A one-page shop: the vendor page itself is its last page.
    assert len(SHOP.listings_of(SMALL_SHOP)) <= render_shop.PAGE_SIZE
    first = _get(server, f"/shop/{SMALL_SHOP}").page
    assert first.css("div.profil") and first.css("a.article")
    assert first.css("div.pages a.suivant::attr(href)").get() == f"/shop/{SMALL_SHOP}?page=2"
    past = _get(server, f"/shop/{SMALL_SHOP}?page=2").page
    assert not past.css("div.profil, a.article")
    assert past.css("div.pages a.suivant::attr(href)").get() == f"/shop/{SMALL_SHOP}?page=3"
    assert _get(server, f"/shop/{BIG_SHOP}?page=0").status == 404
    assert _get(server, "/shop/no-such-shop?page=9").status == 404
    assert server.stats["trap"] == 4


ALL_PAGES = {
    "demo": [
        "/",
        "/vendors",
        f"/category/{PARENT}",
        *(f"/category/{DEEP}?page={page}" for page in range(1, DEEP_PAGES + 2)),
        f"/listing/{LISTING}",
        f"/vendor/{VENDOR}",
        f"/photo/{LISTING}",
        "/no/such/page",
    ],
    "grid": [
        "/",
        "/vendors",
        "/vendors?offset=8",
        f"/c/{GRID_PARENT}",
        *(
            f"/c/{GRID_LEAF}?offset={offset}"
            for offset in range(0, GRID_LAST + 2 * render_grid.PAGE_SIZE, render_grid.PAGE_SIZE)
        ),
        f"/p/{next(iter(GRID.listings))}",
        f"/u/{next(iter(GRID.vendors))}",
        f"/photo/{next(iter(GRID.listings))}",
        "/no/such/page",
    ],
    "shop": [
        "/",
        *(f"/shop/{BIG_SHOP}?page={page}" for page in range(1, BIG_PAGES + 2)),
        f"/shop/{BIG_SHOP}",
        f"/shop/{SMALL_SHOP}",
        f"/shop/{SMALL_SHOP}?page=2",
        _item_path(next(iter(SHOP.listings.values()))),
        f"/photo/{next(iter(SHOP.listings))}",
        "/no/such/page",
    ],
}
# Pages the trap redraws: each layout's last real page and the pages past it.
TRAPPED = {
    "demo": {f"/category/{PARENT}", *ALL_PAGES["demo"][3 + DEEP_PAGES - 1 : 3 + DEEP_PAGES + 1]},
    "grid": {f"/c/{GRID_LEAF}?offset={GRID_LAST + step}" for step in (0, render_grid.PAGE_SIZE)},
    "shop": {
        f"/shop/{BIG_SHOP}?page={BIG_PAGES}",
        f"/shop/{BIG_SHOP}?page={BIG_PAGES + 1}",
        f"/shop/{SMALL_SHOP}",
        f"/shop/{SMALL_SHOP}?page=2",
    },
}


@pytest.mark.parametrize("market", ["demo", "grid", "shop"])
def test_all_off_serves_byte_identical_pages(
    serve: Callable[..., FixtureServer], market: str
) -> None:
    plain, harmless = serve(market=market), serve(Hostility(), market=market)
    for path in ALL_PAGES[market]:
        ours, theirs = _get(plain, path), _get(harmless, path)
        assert (ours.status, ours.body) == (theirs.status, theirs.body), path
        assert sorted(ours.headers.items()) == sorted(theirs.headers.items()), path
    assert harmless.stats == {**dict.fromkeys(OUTCOMES, 0), "content": len(ALL_PAGES[market])}


@pytest.mark.parametrize("market", ["demo", "grid", "shop"])
def test_the_trap_leaves_other_pages_byte_identical(
    serve: Callable[..., FixtureServer], market: str
) -> None:
    plain, trapped = serve(market=market), serve(Hostility(pagination_trap=True), market=market)
    for path in ALL_PAGES[market]:
        ours, theirs = _get(plain, path), _get(trapped, path)
        assert ((ours.status, ours.body) == (theirs.status, theirs.body)) == (
            path not in TRAPPED[market]
        ), path


def test_hostile_pages_are_off_unless_switched_on(serve: Callable[..., FixtureServer]) -> None:
    server = serve()
    assert _get(server, "/listing/hostile-oversized").status == 404
    assert not _get(server).page.css("section.specials")


def test_hostile_pages_are_linked_from_the_home_page_only(
    serve: Callable[..., FixtureServer],
) -> None:
    plain, hostile = serve(), serve(Hostility(hostile_pages=True))
    links = _get(hostile).page.css("section.specials a::attr(href)").getall()
    assert links == [*HOSTILE_LINKED, HOSTILE_LINKS_PATH]
    assert _get(hostile).page.css("section.specials a.listing-link")  # the demo's follow rule
    for path in ALL_PAGES["demo"][1:]:  # every page but the home page is the market's own
        assert _get(plain, path).body == _get(hostile, path).body, path
    assert hostile.stats["content"] == len(ALL_PAGES["demo"]) + 1


def test_other_layouts_have_no_hostile_pages(serve: Callable[..., FixtureServer]) -> None:
    plain, hostile = serve(market="grid"), serve(Hostility(hostile_pages=True), market="grid")
    assert _get(plain).body == _get(hostile).body
    assert _get(hostile, "/listing/hostile-oversized").status == 404


def _listing(server: FixtureServer, key: str) -> Reply:
    reply = _get(server, f"/listing/{key}")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    return reply


def test_the_oversized_listing_has_80000_tiers(serve: Callable[..., FixtureServer]) -> None:
    reply = _listing(serve(Hostility(hostile_pages=True)), "hostile-oversized")
    assert len(reply.body) > 6_000_000
    rows = reply.page.css("table.tiers tr.tier")
    assert len(rows) == OVERSIZED_TIERS
    assert rows[-1].css("td.tier-qty::text").get() == f"{OVERSIZED_TIERS} g"
    assert reply.page.css("h1.listing-title::text").get() == "Hostile listing hostile-oversized"
    assert reply.page.css("div.sold-by a.vendor-link::attr(href)").get() == (
        f"/vendor/{min(WORLD.vendors)}"
    )


def test_the_deep_description_nests_100000_levels(serve: Callable[..., FixtureServer]) -> None:
    reply = _listing(serve(Hostility(hostile_pages=True)), "hostile-deep-description")
    description = reply.body.split(b'<div class="description">\n', 1)[1]
    assert description.startswith(b"<div>" * DEEP_LEVELS + b"<p>At the bottom.</p>")
    assert b"</div>" * DEEP_LEVELS in description


def test_the_undecodable_page_is_invalid_in_its_charset(
    serve: Callable[..., FixtureServer],
) -> None:
    reply = _listing(serve(Hostility(hostile_pages=True)), "hostile-undecodable")
    assert reply.body.count(UNDECODABLE) == 3  # in <title>, the title and the description
    with pytest.raises(UnicodeDecodeError):
        reply.body.decode("utf-8")


@pytest.mark.parametrize(("key", "raw"), ABSURD_PRICES.items(), ids=list(ABSURD_PRICES))
def test_absurd_prices_are_shown_as_written(
    serve: Callable[..., FixtureServer], key: str, raw: str
) -> None:
    reply = _listing(serve(Hostility(hostile_pages=True)), key)
    assert reply.page.css("div.price span.price-primary::text").get() == raw


def test_the_gzip_bomb_inflates_far_past_any_download_limit(
    serve: Callable[..., FixtureServer],
) -> None:
    reply = _get(serve(), GZIP_BOMB_PATH)  # a fixed endpoint: served whatever the hostility
    assert reply.status == 200
    assert reply.headers["Content-Encoding"] == "gzip"
    assert len(reply.body) < 1_000_000
    inflate = zlib.decompressobj(31)
    assert inflate.decompress(reply.body, 1 << 20) == bytes(1 << 20)  # zeros, as far as read
    # the gzip trailer's ISIZE: what it all inflates to (mod 2**32)
    assert int.from_bytes(reply.body[-4:], "little") == GZIP_BOMB_BYTES


def test_hostility_is_swapped_while_running(serve: Callable[..., FixtureServer]) -> None:
    server = serve()
    assert server.hostility == Hostility()
    assert _outcome(_get(server)) == C
    server.set_hostility(Hostility(maintenance=True))
    assert _outcome(_get(server)) == "maintenance"
    server.hostility = Hostility(captcha_every=2)  # request numbers start over
    assert [_outcome(_get(server)) for _ in range(2)] == [C, CAPTCHA]
    assert server.stats == {**dict.fromkeys(OUTCOMES, 0), C: 2, "maintenance": 1, CAPTCHA: 1}


@pytest.mark.parametrize(
    "settings",
    [
        {"captcha_every": 0},
        {"die_after": 0},
        {"rate_limit": (3, 2)},
        {"unavailable": (0, 2)},
        {"session_expires_after": 3},  # without a session cookie
        {"slow_seconds": -1.0},
    ],
)
def test_nonsense_hostility_is_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Hostility"):
        Hostility(**settings)  # type: ignore[arg-type]
