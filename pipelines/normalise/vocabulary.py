"""What the normalisers understand, written out from their own tables for people.

A team adding a market should read what "Domestic", "1/2 oz" or "vor 3 Tagen" becomes
without opening the normalisers' source. `vocabulary_markdown()` renders the tables the
code itself uses (so the page cannot drift from the code); `darkarchive normalisers`
prints it, and `NORMALISERS.md` is its output, checked by a test to be current.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from typing import TYPE_CHECKING

import pycountry

from pipelines.normalise.countries import ALIASES, EUROPE, WORLDWIDE
from pipelines.normalise.currencies import AMOUNT_CAPS, CRYPTO_ALIASES, FIAT_SYMBOLS
from pipelines.normalise.dates import MAX_AGE, MAX_AHEAD, RELATIVE
from pipelines.normalise.flags import FLAG_WORDS
from pipelines.normalise.prices import FREE_WORDS
from pipelines.normalise.quantities import GRAMS_PER, QUANTITY_CAP, UNIT_ALIASES
from pipelines.normalise.ratings import COUNT_CAP, SCALE_CAP

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

logger = logging.getLogger(__name__)

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "ru": "Russian"}


def _grouped(table: Mapping[str, str]) -> dict[str, list[str]]:
    """Aliases by what they mean, in table order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for alias, meaning in table.items():
        groups[meaning].append(alias)
    return groups


def _words(words: Iterable[str]) -> str:
    return ", ".join(f"`{w}`" for w in words)


def _rows(header: tuple[str, str], groups: Mapping[str, list[str]]) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| `{meaning}` | {_words(aliases)} |" for meaning, aliases in groups.items()]
    return lines


def _locales() -> list[str]:
    return sorted(os.listdir(pycountry.LOCALES_DIR))


def vocabulary_markdown() -> str:
    """The page: currencies, units, ratings, countries and date phrases, as the code reads them."""
    out = [
        "# What the normalisers understand",
        "",
        "Generated from the normalisers' own tables by `darkarchive normalisers`; do not edit",
        "by hand. Matching ignores case. The raw text is always stored beside the value read.",
        "A source adds its market's own words in `normalise.values`: `countries` (to a code,",
        '`*`, `EU`, or `@ships_from` for "Domestic"), `units` ("copy": `unit`), `ratings`',
        '("Positive": `5/5`) and `flags` ("100% escrow": true); the page\'s text is still',
        "stored exactly as shown.",
        "",
        "## Currencies (`pipelines/normalise/currencies.py`)",
        "",
        *_rows(("ticker", "written as"), _grouped(CRYPTO_ALIASES)),
        "",
        *_rows(("ISO 4217", "symbol or word"), _grouped(FIAT_SYMBOLS)),
        "",
        "Any ISO 4217 code (`45 usd`, `EUR 12`) is read too. An amount with a minus sign,",
        "exponent notation or more than 24 digits is a problem, never a value; so is one above",
        "its currency's cap (about a billion US dollars' worth): "
        + ", ".join(f"{c} {cap:,.0f}" for c, cap in sorted(AMOUNT_CAPS.items()))
        + ".",
        "",
        "A price of nothing is zero (in the source's default currency, else USD): "
        f"{_words(sorted(FREE_WORDS))}.",
        "",
        "## Quantities (`pipelines/normalise/quantities.py`)",
        "",
        *_rows(("unit", "written as"), _grouped(UNIT_ALIASES)),
        "",
        "Masses convert to grams ("
        + ", ".join(f"1 {u} = {g.normalize():f} g" for u, g in GRAMS_PER.items())
        + "), volumes to ml. Packs (`100 x 10mg`, `10 pills`) and fractions (`1/2 oz`, `½ oz`)",
        f"are read; a total above {QUANTITY_CAP:,.0f} base units is a problem.",
        "",
        "## Ratings (`pipelines/normalise/ratings.py`)",
        "",
        "`x/y`, `x out of y`, `x of y`, `x von y`, `x aus y` carry their own scale; `x %` is",
        "out of 100; a number beside a star (`4.5 stars`, `4,5 Sterne`, `★ 4.5`) is out of 5; a",
        "run of star glyphs (`★★★★☆`, `½` a half) counts the filled ones out of all. A bare",
        "number needs the source's `normalise.rating_scale`. Values are stored as read and on",
        f"0–1. Scales above {SCALE_CAP:.0f} and counts above {COUNT_CAP:,.0f} are problems;",
        "counts read `1,234`, `1.2k`, `3M`.",
        "",
        "## Yes/no facts (`pipelines/normalise/flags.py`)",
        "",
        "Availability, escrow and finalize early are read from words, the longest match first",
        "(so `not available` is never `available`):",
        "",
        f"- yes: {_words(w for w, v in FLAG_WORDS.items() if v)}",
        f"- no: {_words(w for w, v in FLAG_WORDS.items() if not v)}",
        "",
        "## Countries (`pipelines/normalise/countries.py`)",
        "",
        "ISO 3166-1 names and codes (alpha-2 and alpha-3) in English always; the official,",
        "common and short names in each language a source declares (`normalise.languages`)",
        f"come from pycountry's translations (about {len(_locales()) // 10 * 10} languages,",
        "ISO 639-1 codes such as `de`, `fr`, `ru`, `es`, `nl`).",
        f"`{WORLDWIDE}` means worldwide and `{EUROPE}` Europe / the EU. Colloquial names:",
        "",
        *_rows(("code", "written as"), _grouped(ALIASES)),
        "",
        "A list may be separated by `,` `;` `/` `|` `+` ` - `, joined by `and`, `und`, `&`, and",
        "start with a label (`Ships to:`).",
        "",
        "## Dates (`pipelines/normalise/dates.py`)",
        "",
        "Every language has the same interval semantics, half-open `[earliest, latest)` in UTC.",
        "A relative age holds the true time whichever way the market rounded it (floor, nearest,",
        "ceiling or calendar days): `N units ago` is N-1 to N+1 units before the page's clock",
        "(months 28-31 days, years 365-366), widened by `CLOCK_SLACK` (15 minutes) either side.",
        "`today`/`yesterday` are 0/1 days ago, `last week` one week ago, `now` zero hours ago.",
        "A day word with a clock time (`today at 14:05`) is that minute in the source's",
        "`normalise.timezone` (default UTC), as are absolute dates without a zone; those go to",
        "dateparser in the source's languages (and `normalise.date_order`). A date more than",
        f"{MAX_AGE.years} years before the page's clock or {MAX_AHEAD.years} year after it is a",
        "problem. Relative phrases:",
        "",
    ]
    for code, words in RELATIVE.items():
        name = LANGUAGE_NAMES.get(code, code)
        shape = [f"`N unit {w}`" for w in words.after] + [f"`{w} N unit`" for w in words.before]
        if words.implicit_one:
            shape += [f"`unit {w}` (N = 1)" for w in words.after]
        units = _grouped(words.units)
        out += [
            f"### {name} (`{code}`)",
            "",
            f"- phrases: {', '.join(shape)}",
            f"- numbers: {_words(f'{w} = {n}' for w, n in words.numbers.items())}",
            *(f"- {unit}: {_words(forms)}" for unit, forms in units.items()),
            f"- days back: {_words(f'{w} = {n}' for w, n in words.days.items())}",
            f"- one unit ago: {_words(words.last)}",
            f"- now: {_words(words.now)}",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"
