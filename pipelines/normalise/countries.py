"""Ship-from / ship-to country lists to ISO 3166-1 alpha-2 codes."""

from __future__ import annotations

import gettext
import re
from functools import cache
from typing import TYPE_CHECKING

import pycountry

from pipelines.normalise.errors import CountryError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

WORLDWIDE = "*"
EUROPE = "EU"  # a region, not a country: ISO reserves "EU" for the European Union

# Colloquial names markets use that no standard lists ("Holland", "UK", "weltweit"),
# lower-cased. Official names in other languages come from pycountry's own translations
# (`localised_names`), for the languages a source declares.
ALIASES: dict[str, str] = {
    **dict.fromkeys(["uk", "u.k.", "great britain", "britain", "england", "scotland", "wales",
                     "northern ireland", "großbritannien", "england/uk", "grande-bretagne",
                     "angleterre"], "GB"),
    **dict.fromkeys(["u.s.a.", "u.s.", "america", "the us", "the usa", "usa", "amerika",
                     "etats-unis"], "US"),
    **dict.fromkeys(["holland", "the netherlands", "hollande"], "NL"),
    **dict.fromkeys(["russia", "russland", "russie", "россия"], "RU"),
    **dict.fromkeys(["turkey", "türkei", "turquie"], "TR"),
    **dict.fromkeys(["ivory coast", "elfenbeinküste", "côte d'ivoire"], "CI"),
    **dict.fromkeys(["south korea", "korea", "corée du sud"], "KR"),
    **dict.fromkeys(["czechia", "czech republic"], "CZ"),
    "oesterreich": "AT", "weißrussland": "BY", "belarus": "BY",
    **dict.fromkeys(["monde entier", "partout dans le monde"], WORLDWIDE),
    **dict.fromkeys(["eu", "europe", "european union", "europa", "europäische union",
                     "union européenne"], EUROPE),
    **dict.fromkeys(["worldwide", "world wide", "world-wide", "ww", "anywhere", "global",
                     "worldwide shipping", "international", "weltweit", "everywhere"], WORLDWIDE),
}  # fmt: skip

_SEPARATORS = re.compile(r"\s*(?:[,;/|+]|\s-\s)\s*")
_CONJUNCTIONS = re.compile(r"\s+(?:and|und|&)\s+|\s*&\s*", re.IGNORECASE)
_LABEL = re.compile(r"^\s*[\w ]{1,30}:\s*")


def parse_country(
    text: str, languages: Sequence[str] = (), extra: Mapping[str, str] | None = None
) -> str:
    """One country name, code or alias to ISO 3166-1 alpha-2.

    Returns ``"*"`` for worldwide and ``"EU"`` for Europe / the EU (a region, kept because
    markets ship "to EU" and researchers group by it).

    >>> parse_country("Netherlands"), parse_country("UK"), parse_country("Worldwide")
    ('NL', 'GB', '*')
    >>> parse_country("Германия", languages=["ru"]), parse_country("Países Bajos", ["es"])
    ('DE', 'NL')
    """
    code = _lookup(text, languages, extra)
    if code is None:
        raise CountryError(text, "unknown country", name=text.strip())
    return code


def parse_countries(
    text: str, languages: Sequence[str] = (), extra: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """A list of countries ("Germany, Netherlands / UK and USA") to alpha-2 codes.

    Order is kept and duplicates dropped. Names that contain "and" ("Bosnia and
    Herzegovina") and pycountry's comma names ("Korea, Republic of") are tried whole first.
    A leading label ("Ships to:") is ignored. An unknown name raises ``CountryError`` with
    that name in ``.name``. ``extra`` holds a source's own words (lower-cased), tried first:
    ``{"domestic": "@ships_from", "eu only": "EU"}``.

    >>> parse_countries("Ships to: Germany, Holland & UK")
    ('DE', 'NL', 'GB')
    """
    body = _LABEL.sub("", text, count=1) if _lookup(text, languages, extra) is None else text
    whole = _lookup(body, languages, extra)
    if whole is not None:
        return (whole,)
    codes: list[str] = []
    for piece in _SEPARATORS.split(body):
        if not piece.strip():
            continue
        code = _lookup(piece, languages, extra)
        if code is not None:
            codes.append(code)
            continue
        for name in _CONJUNCTIONS.split(piece):
            if not name.strip():
                continue
            code = _lookup(name, languages, extra)
            if code is None:
                raise CountryError(text, f"unknown country {name.strip()!r}", name=name.strip())
            codes.append(code)
    if not codes:
        raise CountryError(text, "no country")
    return tuple(dict.fromkeys(codes))


def _lookup(
    name: str, languages: Sequence[str] = (), extra: Mapping[str, str] | None = None
) -> str | None:
    key = " ".join(name.replace("\u00a0", " ").split()).strip(" .").lower()
    if not key:
        return None
    if extra and key in extra:
        return extra[key]
    if key in ALIASES:
        return ALIASES[key]
    try:
        country = pycountry.countries.lookup(key)
    except LookupError:
        pass
    else:
        return str(country.alpha_2)
    for language in languages:
        code = localised_names(language).get(key)
        if code is not None:
            return code
    return None


@cache
def localised_names(language: str) -> dict[str, str]:
    """Country names in `language` (ISO 639-1) from pycountry's translations, lower-cased,
    to alpha-2: the name, official name and common name of every country.

    >>> localised_names("de")["niederlande"], localised_names("fr")["allemagne"]
    ('NL', 'DE')
    """
    try:
        translate = gettext.translation(
            "iso3166-1", pycountry.LOCALES_DIR, languages=[language]
        ).gettext
    except OSError:  # no translation for this language (English is the source itself)
        return {}
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                names.setdefault(translate(value).lower(), str(country.alpha_2))
    return names
