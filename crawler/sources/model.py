"""The shape of a source definition: one marketplace described as data."""

from __future__ import annotations

import re
import zoneinfo
from typing import Any, Literal

import regex
from cssselect import GenericTranslator, SelectorError
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crawler.config_errors import NestedKeyError
from crawler.extraction.patterns import compile_pattern
from crawler.extraction.registry import UnknownPageObject, resolve_page_object
from crawler.middlewares.onion_guard import is_onion
from crawler.sources.fields import unknown_names

PageKind = Literal["index", "listing", "vendor"]
PageState = Literal[
    "listing",
    "index",
    "vendor",
    "login_wall",
    "captcha",
    "queue",
    "rate_limited",
    "maintenance",
    "not_found",
    "error",
    "other",
]
CHALLENGE_STATES: frozenset[str] = frozenset(
    {"login_wall", "captcha", "queue", "rate_limited", "maintenance"}
)
PROCESSORS: frozenset[str] = frozenset(
    {"strip", "html_to_text", "join", "join_lines", "lower", "upper", "absolute_url"}
)


def _valid_pattern(value: str | None) -> str | None:
    """Source patterns run with the `regex` package (crawler.extraction.patterns)."""
    if value is not None:
        try:
            compile_pattern(value)
        except regex.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
    return value


# EXSLT regular expressions inside XPath run Python's `re` in lxml, outside the time
# limit every other pattern of a source file runs under (crawler/extraction/patterns.py).
_XPATH_REGEX = re.compile(r"\bre:(?:test|match|replace)\s*\(")


def _bounded_xpath(value: str | None) -> str | None:
    if value is not None and _XPATH_REGEX.search(value):
        raise ValueError(
            "XPath's re:test/re:match/re:replace run without a time limit; select the "
            "text with XPath and match it with the rule's `regex` (or a detector's "
            "`text_regex`), which run under one"
        )
    return value


class _Strict(BaseModel):
    """Unknown keys are typos in a hand-written YAML file: refuse them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class VolatileRegion(_Strict):
    """A region of every page that changes on every request (a form token, the server's
    clock, "users online"): cut out before the page's content digest is taken, so a page
    that changed only there is archived as unchanged (pipelines/store/volatile.py).

    Written as a CSS selector (`"footer.page-meta"`) or `{xpath: "//footer"}`; it selects
    elements (no `::text`, `::attr`), each dropped with its text.
    """

    css: str | None = None
    xpath: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _css_by_default(cls, value: Any) -> Any:
        return {"css": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_selector_that_compiles(self) -> VolatileRegion:
        if (self.css is None) == (self.xpath is None):
            raise ValueError("give a CSS selector, or exactly one of css or xpath")
        if self.css is not None:
            if "::" in self.css:
                raise ValueError(f"{self.css!r}: a volatile region selects elements, not ::text")
            try:
                xpath = GenericTranslator().css_to_xpath(self.css)
            except SelectorError as exc:
                raise ValueError(f"not a valid CSS selector: {self.css!r} ({exc})") from exc
        else:
            xpath = _bounded_xpath(self.xpath) or ""
        try:
            etree.XPath(xpath)
        except etree.XPathSyntaxError as exc:
            raise ValueError(f"not a valid XPath: {xpath!r} ({exc})") from exc
        return self

    def as_config(self) -> dict[str, str]:
        """What the run records (`config.volatile`) and the archive reads."""
        return {"css": self.css} if self.css is not None else {"xpath": self.xpath or ""}


class FieldRule(_Strict):
    """How one field is read from a page: a selector, then an optional regex and processors.

    Exactly one of `css`, `xpath`, `url_regex` or `const` says where the value comes from;
    `regex` keeps its first group (or the whole match), or with `template` ("{1}-{2}") a
    combination of its groups (`url_regex` too); `processors` run in order.
    """

    css: str | None = None
    xpath: str | None = None
    url_regex: str | None = None
    const: str | None = None
    regex: str | None = None
    template: str | None = None
    multiple: bool = False
    required: bool = False
    processors: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_origin(self) -> FieldRule:
        origins = [o for o in (self.css, self.xpath, self.url_regex, self.const) if o is not None]
        if len(origins) != 1:
            raise ValueError("give exactly one of css, xpath, url_regex or const")
        if self.template is not None:
            pattern = self.regex if self.regex is not None else self.url_regex
            if pattern is None:
                raise ValueError("a template needs a regex or url_regex whose groups it joins")
            groups = compile_pattern(pattern).groups
            try:
                self.template.format(*["x"] * (groups + 1))
            except (IndexError, KeyError, ValueError) as exc:
                raise ValueError(
                    f"template {self.template!r} names a group the pattern lacks "
                    f"({groups} group(s); use {{1}}..{{{groups}}})"
                ) from exc
        return self

    @field_validator("regex", "url_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _valid_pattern(value)

    @field_validator("xpath")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        return _bounded_xpath(value)

    @field_validator("processors")
    @classmethod
    def _known_processors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if p not in PROCESSORS]
        if unknown:
            expected = sorted(PROCESSORS)
            raise ValueError(f"unknown processor(s) {unknown}; expected one of {expected}")
        return value


class ListRule(_Strict):
    """A repeated block (price tiers, feedback entries): one record per matched element."""

    css: str | None = None
    xpath: str | None = None
    fields: dict[str, FieldRule]

    @field_validator("xpath")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        return _bounded_xpath(value)

    @model_validator(mode="after")
    def _one_origin(self) -> ListRule:
        if (self.css is None) == (self.xpath is None):
            raise ValueError("give exactly one of css or xpath")
        return self


class PageBlueprint(_Strict):
    """What a page of one kind looks like and which fields it carries."""

    url_regex: str | None = None
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    lists: dict[str, ListRule] = Field(default_factory=dict)
    #: installed code that reads the page instead of `fields` (see crawler.extraction.registry)
    page_object: str | None = None
    #: seconds the page object may take on one page before the page is abandoned
    page_object_timeout: float = Field(default=20.0, gt=0.0, le=600.0)
    min_field_coverage: float = Field(default=0.0, ge=0.0, le=1.0)
    #: share of this kind's pages that may fail extraction before the run fails as a
    #: template drift; a few odd pages are the market's, most of them are our blueprint's
    max_failed_share: float = Field(default=0.2, ge=0.0, le=1.0)
    #: most items kept of each list in a record (tiers, variants) and of a page's feedback;
    #: the rest is cut and recorded as a problem, so a hostile page cannot make a record
    #: over MongoDB's 16 MB document limit
    max_list_items: int = Field(default=500, ge=1)
    #: the source's own fields, beyond those the normalisers read: extracted under
    #: `fields` like any other, kept as the text shown (`extra.<name>`), versioned, exported
    extra_fields: list[str] = Field(default_factory=list)

    @field_validator("url_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _valid_pattern(value)

    @field_validator("page_object")
    @classmethod
    def _installed(cls, value: str | None) -> str | None:
        """Only installed code, found now: a typo must not surface thirty pages in."""
        if value is not None:
            try:
                resolve_page_object(value)
            except UnknownPageObject as exc:
                raise ValueError(str(exc)) from exc
        return value


class LinkRules(_Strict):
    """Where the spider goes next; each value selects link targets (href values)."""

    index: list[str] = Field(default_factory=list)
    pagination: list[str] = Field(default_factory=list)
    listing: list[str] = Field(default_factory=list)
    vendor: list[str] = Field(default_factory=list)


class StateDetector(_Strict):
    """A rule that gives a page its state before extraction (Midnight-Sea-style detectors).

    All the conditions given must hold. A detector with no condition is refused.
    """

    state: PageState
    status: list[int] = Field(default_factory=list)
    css: str | None = None
    xpath: str | None = None
    text_regex: str | None = None
    url_regex: str | None = None

    @field_validator("text_regex", "url_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return _valid_pattern(value)

    @field_validator("xpath")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        return _bounded_xpath(value)

    @model_validator(mode="after")
    def _has_condition(self) -> StateDetector:
        if not (self.status or self.css or self.xpath or self.text_regex or self.url_regex):
            raise ValueError("a detector needs one of status, css, xpath, text_regex, url_regex")
        return self


class Politeness(_Strict):
    """Load the team puts on a market: per-source concurrency, delay and timeouts.

    The defaults are gentle (two requests at a time, about a second apart, randomised by
    Scrapy between 0.5x and 1.5x): a source that wants more says so in its file.
    """

    concurrency: int = Field(default=2, ge=1, le=64)
    delay: float = Field(default=1.0, ge=0.0)
    timeout: float = Field(default=60.0, gt=0.0)
    retries: int = Field(default=2, ge=0, le=10)
    max_pages: int = Field(default=0, ge=0)


class SecretRef(_Strict):
    """Where a secret value lives: an environment variable or a file outside the repo."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self


class UrlRules(_Strict):
    """Which URLs name the same page (crawler/urls.py)."""

    #: the query parameters that identify a page (`page`, `sort`); any other is dropped
    #: when URLs are compared (per-request tracking tokens). None: every parameter counts.
    query_params: list[str] | None = None


class Session(_Strict):
    """Session cookies by name; values are never written in the source file."""

    cookies: dict[str, SecretRef] = Field(default_factory=dict)
    #: the name of the market's login cookie, asked for by `darkarchive session set`
    cookie: str | None = Field(default=None, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")


class SourceTor(_Strict):
    """How a Tor source uses Tor: its circuits, the hosts it may reach, when to give up.

    Every request of a Tor source goes through Tor with the SOCKS username below; Tor's
    `IsolateSOCKSAuth` then keeps the source on circuits of its own. Give each account of
    a market its own username to keep the accounts apart too.
    """

    socks_username: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    #: non-onion hosts this source may be sent to (a redirect, a CDN); still only via Tor
    allow_hosts: list[str] = Field(default_factory=list)
    #: failures that point at a bad circuit before asking Tor for a new identity (NEWNYM)
    new_identity_after: int = Field(default=5, ge=1)
    #: failures in a row, with no page fetched between, before the source is marked down
    down_after: int = Field(default=25, ge=1)


class RatingScales(_Strict):
    """The scale a bare rating number is on, per field: vendors and reviews often differ."""

    vendor: float | None = Field(default=None, gt=0)
    feedback: float | None = Field(default=None, gt=0)


SHIPS_FROM = "@ships_from"  # a destination that means the listing's own ships-from country
UNITS: frozenset[str] = frozenset({"g", "mg", "kg", "oz", "lb", "ml", "l", "ug", "unit"})


class ValueMaps(_Strict):
    """A market's own words for values the normalisers read, mapped to what they mean.

    The page's text is stored exactly as shown; the mapped meaning is what gets normalised.
    Keys are matched whole and case-insensitively: a country (or list item) "Domestic",
    a unit word "copy", a rating "Positive".
    """

    #: to an ISO 3166-1 alpha-2 code, `*` (worldwide), `EU`, or `@ships_from` (the
    #: listing's own ships-from country: "Domestic")
    countries: dict[str, str] = Field(default_factory=dict)
    #: a unit word to one of g, mg, kg, oz, lb, ml, l, ug, unit ("copy", "шт")
    units: dict[str, str] = Field(default_factory=dict)
    #: a rating word to a rating the normalisers read ("Positive": "5/5", "Trust 94": "94%")
    ratings: dict[str, str] = Field(default_factory=dict)
    #: a yes/no word to true or false ("FE": true, "Escrow only": false)
    flags: dict[str, bool] = Field(default_factory=dict)

    @field_validator("countries")
    @classmethod
    def _country_codes(cls, value: dict[str, str]) -> dict[str, str]:
        for word, code in value.items():
            if code not in ("*", "EU", SHIPS_FROM) and not re.fullmatch(r"[A-Z]{2}", code):
                raise ValueError(
                    f"{word!r}: {code!r} is not an ISO alpha-2 code, '*', 'EU' or {SHIPS_FROM!r}"
                )
        return {" ".join(w.lower().split()): c for w, c in value.items()}

    @field_validator("units")
    @classmethod
    def _unit_names(cls, value: dict[str, str]) -> dict[str, str]:
        for word, unit in value.items():
            if unit not in UNITS:
                raise ValueError(f"{word!r}: {unit!r} is not one of {sorted(UNITS)}")
        return value

    @field_validator("ratings", "flags")
    @classmethod
    def _folded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {" ".join(w.lower().split()): r for w, r in value.items()}


class NormaliseHints(_Strict):
    """What the normalisers cannot guess from one string."""

    default_currency: str | None = None
    decimal_separator: Literal[".", ","] | None = None
    date_order: Literal["DMY", "MDY", "YMD"] | None = None
    languages: list[str] = Field(default_factory=lambda: ["en"])
    #: one scale for every rating field, or one per field (`{vendor: 100, feedback: 5}`);
    #: a rating that states its scale ("94%", "4.8/5", "★★★★☆") is read by what it states
    rating_scale: float | RatingScales | None = None
    values: ValueMaps = Field(default_factory=ValueMaps)
    #: the market's IANA time zone ("Europe/Moscow"): "today at 14:05" and dates shown
    #: without a zone are its local time, stored as UTC
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (KeyError, ValueError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'Europe/Moscow')") from exc
        return value

    def scale_for(self, field: str) -> float | None:
        """The default scale of `field` (`vendor` or `feedback`)."""
        if isinstance(self.rating_scale, RatingScales):
            return getattr(self.rating_scale, field)  # type: ignore[no-any-return]
        return self.rating_scale


class Source(_Strict):
    """One marketplace as configured (one YAML file under config/sources/)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    name: str
    network: Literal["tor", "clearnet"]
    mirrors: list[str] = Field(min_length=1)
    start_pages: list[str] = Field(default_factory=lambda: ["/"])
    follow: LinkRules
    pages: dict[PageKind, PageBlueprint]
    rates: FieldRule | None = None
    #: a page that shows the rates (path or URL on a mirror), fetched first in each run
    rates_page: str | None = Field(default=None, pattern=r"^(/|https?://)\S*$")
    states: list[StateDetector] = Field(default_factory=list)
    politeness: Politeness = Field(default_factory=Politeness)
    session: Session = Field(default_factory=Session)
    normalise: NormaliseHints = Field(default_factory=NormaliseHints)
    tor: SourceTor = Field(default_factory=SourceTor)
    content_types: list[str] = Field(default_factory=lambda: ["text/html"])
    urls: UrlRules = Field(default_factory=UrlRules)
    #: regions that change on every request, ignored when deciding a page is unchanged
    volatile: list[VolatileRegion] = Field(default_factory=list)

    @field_validator("mirrors")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"mirror {url!r} is not an http(s) URL")
        return [url.rstrip("/") for url in value]

    @field_validator("pages")
    @classmethod
    def _known_field_names(cls, value: dict[str, PageBlueprint]) -> dict[str, PageBlueprint]:
        """A field nothing reads is a typo, refused like any other unknown key."""
        problems = [
            ((kind, *key), text)
            for kind, blueprint in value.items()
            for key, text in unknown_names(
                kind,
                {n: r for n, r in blueprint.fields.items() if n not in blueprint.extra_fields},
                {n: r.fields for n, r in blueprint.lists.items()},
            )
        ]
        if problems:
            raise NestedKeyError(problems)
        return value

    @model_validator(mode="after")
    def _rates_page_needs_rates(self) -> Source:
        if self.rates_page is not None and self.rates is None:
            raise ValueError("rates_page needs a `rates` rule to read the rates there with")
        return self

    @model_validator(mode="after")
    def _onions_need_tor(self) -> Source:
        onions = [url for url in self.mirrors if is_onion(url)]
        if onions and self.network != "tor":
            raise ValueError(f"mirror(s) {onions} are onion services: set network: tor")
        return self

    @property
    def socks_username(self) -> str:
        return self.tor.socks_username or self.id
