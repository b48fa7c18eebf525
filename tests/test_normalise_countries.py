"""Ships-from / ships-to fields as vendor pages and listing filters print them.

Rows mix full names, ISO codes, market slang ("UK", "USA", "Holland", "WW"), German names
("Deutschland, Österreich, Schweiz"), separators ("," "/" ";" "&" "and"), labels
("Ships to: …"), names that themselves contain "and" or a comma, and the regions markets
offer: worldwide (``"*"``) and Europe / EU (``"EU"``).
"""

from __future__ import annotations

import pickle

import pytest

from pipelines.normalise import CountryError, NormaliseError, parse_countries, parse_country


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Germany", ("DE",)),
        ("germany", ("DE",)),
        ("DE", ("DE",)),
        ("DEU", ("DE",)),
        ("Deutschland", ("DE",)),
        ("Netherlands", ("NL",)),
        ("The Netherlands", ("NL",)),
        ("Holland", ("NL",)),
        ("UK", ("GB",)),
        # US short names joined with "and", from the grid fixture market's pages
        ("USA, Canada and UK", ("US", "CA", "GB")),
        ("Netherlands, Belgium, Italy, Switzerland and Norway", ("NL", "BE", "IT", "CH", "NO")),
        ("United Kingdom", ("GB",)),
        ("England", ("GB",)),
        ("USA", ("US",)),
        ("US", ("US",)),
        ("United States", ("US",)),
        ("Russia", ("RU",)),
        ("Czech Republic", ("CZ",)),
        ("South Korea", ("KR",)),
        ("Korea, Republic of", ("KR",)),
        ("Bosnia and Herzegovina", ("BA",)),
        ("Trinidad and Tobago", ("TT",)),
        ("Worldwide", ("*",)),
        ("World wide", ("*",)),
        ("WW", ("*",)),
        ("Anywhere", ("*",)),
        ("Weltweit", ("*",)),
        ("EU", ("EU",)),
        ("Europe", ("EU",)),
        ("European Union", ("EU",)),
        ("Germany, Netherlands", ("DE", "NL")),
        ("Germany/Netherlands", ("DE", "NL")),
        ("DE; NL; BE", ("DE", "NL", "BE")),
        ("USA & Canada", ("US", "CA")),
        ("USA and Canada", ("US", "CA")),
        ("Germany, Netherlands / UK and USA", ("DE", "NL", "GB", "US")),
        ("Deutschland, Österreich, Schweiz", ("DE", "AT", "CH")),
        ("Deutschland und Österreich", ("DE", "AT")),
        # German names pycountry does not know, from the classic fixture market's pages
        ("Irland", ("IE",)),
        ("Finnland", ("FI",)),
        ("Niederlande, Irland, Finnland", ("NL", "IE", "FI")),
        ("Tschechien, Großbritannien, Vereinigte Staaten", ("CZ", "GB", "US")),
        ("Griechenland, Ungarn und Luxemburg", ("GR", "HU", "LU")),
        ("Vereinigtes Königreich", ("GB",)),
        ("Neuseeland / Südafrika", ("NZ", "ZA")),
        # French names, from the shop fixture market's pages
        ("Pays-Bas", ("NL",)),
        ("États-Unis, Pologne, Finlande, Royaume-Uni", ("US", "PL", "FI", "GB")),
        ("Allemagne, Belgique, Tchéquie, Suède", ("DE", "BE", "CZ", "SE")),
        ("Norvège / Autriche / Suisse", ("NO", "AT", "CH")),
        ("Monde entier", ("*",)),
        ("Germany, germany, DE", ("DE",)),
        ("UK, USA, UK", ("GB", "US")),
        ("Trinidad and Tobago, Jamaica", ("TT", "JM")),
        ("Ships to: Worldwide", ("*",)),
        ("Ships from: Holland", ("NL",)),
        ("Versand nach: EU, Schweiz", ("EU", "CH")),
        ("EU, UK, USA", ("EU", "GB", "US")),
        (" Spain ,  Portugal ", ("ES", "PT")),
    ],
)
def test_parse_countries(text: str, expected: tuple[str, ...]) -> None:
    """As a source declaring German and French reads them (`normalise.languages`)."""
    assert parse_countries(text, languages=("de", "fr")) == expected


@pytest.mark.parametrize(
    ("text", "languages", "expected"),
    [
        ("Германия, Нидерланды", ("ru",), ("DE", "NL")),  # pycountry's Russian names
        ("Países Bajos / Alemania", ("es",), ("NL", "DE")),
        ("Niederlande", ("fr", "de"), ("NL",)),  # every declared language is tried
        ("Holland, weltweit", (), ("NL", "*")),  # colloquial names need no language
    ],
)
def test_official_names_come_from_pycountry_in_the_declared_languages(
    text: str, languages: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert parse_countries(text, languages=languages) == expected


def test_a_name_in_an_undeclared_language_is_an_unknown_country() -> None:
    with pytest.raises(CountryError, match="Niederlande"):
        parse_countries("Niederlande")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Narnia", "Narnia"),
        ("Germany, Narnia", "Narnia"),
        ("Afghanistan and Atlantis", "Atlantis"),
        ("Worldwide except USA", "Worldwide except USA"),
        ("", ""),
        (" / ", " / "),
    ],
)
def test_parse_countries_fails(text: str, name: str) -> None:
    with pytest.raises(CountryError) as info:
        parse_countries(text)
    assert info.value.text == text
    assert info.value.name == name
    assert isinstance(info.value, NormaliseError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Germany", "DE"), ("UK", "GB"), ("Holland", "NL"), ("WW", "*"), ("Europe", "EU")],
)
def test_parse_country(text: str, expected: str) -> None:
    assert parse_country(text) == expected


@pytest.mark.parametrize("text", ["Germany, Netherlands", "Mordor", ""])
def test_parse_country_fails(text: str) -> None:
    with pytest.raises(CountryError, match="unknown country"):
        parse_country(text)


def test_country_error_pickles() -> None:
    error = CountryError("Germany, Narnia", "unknown country", name="Narnia")
    again = pickle.loads(pickle.dumps(error))
    assert (again.text, again.reason, again.name) == (error.text, error.reason, error.name)
