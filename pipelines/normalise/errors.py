"""Errors raised by the normalisers, each carrying the raw text it could not read."""

from __future__ import annotations

_SHOWN = 200


class NormaliseError(ValueError):
    """A raw market string could not be normalised.

    ``text`` is the offending input exactly as given and ``reason`` says what was missing, so a
    crawl run can record both next to the URL. The message shows the input (cut at 200
    characters, since PGP blocks and descriptions can be long).

    >>> err = NormaliseError("12 apples", "no currency")
    >>> str(err), err.text
    ("no currency: '12 apples'", '12 apples')
    """

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
        super().__init__(f"{reason}: {shown!r}")

    def __reduce__(self) -> tuple[type[NormaliseError], tuple[str, str]]:
        # Keeps the error picklable (a custom __init__ breaks the default reduce).
        return (type(self), (self.text, self.reason))


class PriceError(NormaliseError):
    """A price, rate or USD conversion could not be worked out."""


class QuantityError(NormaliseError):
    """A quantity (amount, unit, pack count) could not be read."""


class DateError(NormaliseError):
    """A date or relative-date phrase could not be read."""


class CountryError(NormaliseError):
    """A country name is unknown; ``name`` is the single name that failed."""

    def __init__(self, text: str, reason: str, name: str | None = None) -> None:
        super().__init__(text, reason)
        self.name = text if name is None else name

    def __reduce__(self) -> tuple[type[CountryError], tuple[str, str, str]]:  # type: ignore[override]
        return (type(self), (self.text, self.reason, self.name))


class RatingError(NormaliseError):
    """A rating (stars, percent, x/y) or a rating count could not be read."""


class PgpError(NormaliseError):
    """An armoured PGP public key could not be found or parsed."""


class FlagError(NormaliseError):
    """A yes/no field whose text says neither."""
