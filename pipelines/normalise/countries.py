"""Ship-from / ship-to country lists to ISO 3166-1 alpha-2 codes."""

from __future__ import annotations

import re

import pycountry

from pipelines.normalise.errors import CountryError

WORLDWIDE = "*"
EUROPE = "EU"  # a region, not a country: ISO reserves "EU" for the European Union

# Names markets use that pycountry does not know (English, German, French), lower-cased.
ALIASES: dict[str, str] = {
    **dict.fromkeys(["uk", "u.k.", "great britain", "britain", "england", "scotland", "wales",
                     "northern ireland", "united kingdom", "großbritannien", "england/uk"], "GB"),
    **dict.fromkeys(["usa", "u.s.a.", "us", "u.s.", "america", "united states of america",
                     "the us", "the usa", "vereinigte staaten"], "US"),
    **dict.fromkeys(["holland", "the netherlands", "niederlande"], "NL"),
    **dict.fromkeys(["deutschland", "germany"], "DE"),
    **dict.fromkeys(["russia", "russland"], "RU"),
    **dict.fromkeys(["turkey", "türkei"], "TR"),
    **dict.fromkeys(["ivory coast", "elfenbeinküste"], "CI"),
    "österreich": "AT", "oesterreich": "AT", "schweiz": "CH", "frankreich": "FR",
    "spanien": "ES", "italien": "IT", "polen": "PL", "belgien": "BE", "dänemark": "DK",
    "schweden": "SE", "norwegen": "NO", "tschechien": "CZ", "kanada": "CA",
    "australien": "AU", "kolumbien": "CO", "china": "CN", "hong kong": "HK",
    "irland": "IE", "finnland": "FI", "griechenland": "GR", "ungarn": "HU", "luxemburg": "LU",
    "slowakei": "SK", "slowenien": "SI", "kroatien": "HR", "rumänien": "RO",
    "bulgarien": "BG", "litauen": "LT", "lettland": "LV", "estland": "EE", "zypern": "CY",
    "serbien": "RS", "weißrussland": "BY", "neuseeland": "NZ", "südafrika": "ZA",
    "brasilien": "BR", "mexiko": "MX", "indien": "IN", "marokko": "MA", "singapur": "SG",
    "südkorea": "KR", "tschechische republik": "CZ", "vereinigtes königreich": "GB",
    # French
    "pays-bas": "NL", "allemagne": "DE", "belgique": "BE", "royaume-uni": "GB",
    "états-unis": "US", "etats-unis": "US", "australie": "AU", "espagne": "ES",
    "italie": "IT", "pologne": "PL", "tchéquie": "CZ", "république tchèque": "CZ",
    "autriche": "AT", "suisse": "CH", "suède": "SE", "danemark": "DK", "irlande": "IE",
    "norvège": "NO", "finlande": "FI", "grèce": "GR", "hongrie": "HU",
    **dict.fromkeys(["monde entier", "partout dans le monde"], WORLDWIDE),
    **dict.fromkeys(["eu", "europe", "european union", "europa", "europäische union"], EUROPE),
    **dict.fromkeys(["worldwide", "world wide", "world-wide", "ww", "anywhere", "global",
                     "worldwide shipping", "international", "weltweit", "everywhere"], WORLDWIDE),
}  # fmt: skip

_SEPARATORS = re.compile(r"\s*(?:[,;/|+]|\s-\s)\s*")
_CONJUNCTIONS = re.compile(r"\s+(?:and|und|&)\s+|\s*&\s*", re.IGNORECASE)
_LABEL = re.compile(r"^\s*[\w ]{1,30}:\s*")


def parse_country(text: str) -> str:
    """One country name, code or alias to ISO 3166-1 alpha-2.

    Returns ``"*"`` for worldwide and ``"EU"`` for Europe / the EU (a region, kept because
    markets ship "to EU" and researchers group by it).

    >>> parse_country("Netherlands"), parse_country("UK"), parse_country("Worldwide")
    ('NL', 'GB', '*')
    """
    code = _lookup(text)
    if code is None:
        raise CountryError(text, "unknown country", name=text.strip())
    return code


def parse_countries(text: str) -> tuple[str, ...]:
    """A list of countries ("Germany, Netherlands / UK and USA") to alpha-2 codes.

    Order is kept and duplicates dropped. Names that contain "and" ("Bosnia and
    Herzegovina") and pycountry's comma names ("Korea, Republic of") are tried whole first.
    A leading label ("Ships to:") is ignored. An unknown name raises ``CountryError`` with
    that name in ``.name``.

    >>> parse_countries("Ships to: Germany, Holland & UK")
    ('DE', 'NL', 'GB')
    """
    body = _LABEL.sub("", text, count=1) if _lookup(text) is None else text
    whole = _lookup(body)
    if whole is not None:
        return (whole,)
    codes: list[str] = []
    for piece in _SEPARATORS.split(body):
        if not piece.strip():
            continue
        code = _lookup(piece)
        if code is not None:
            codes.append(code)
            continue
        for name in _CONJUNCTIONS.split(piece):
            if not name.strip():
                continue
            code = _lookup(name)
            if code is None:
                raise CountryError(text, f"unknown country {name.strip()!r}", name=name.strip())
            codes.append(code)
    if not codes:
        raise CountryError(text, "no country")
    return tuple(dict.fromkeys(codes))


def _lookup(name: str) -> str | None:
    key = " ".join(name.replace("\u00a0", " ").split()).strip(" .").lower()
    if not key:
        return None
    if key in ALIASES:
        return ALIASES[key]
    try:
        country = pycountry.countries.lookup(key)
    except LookupError:
        return None
    return str(country.alpha_2)
