"""Vendor and listing ratings ("4.87/5", "98%", "★★★★☆") and rating counts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from pipelines.normalise.errors import RatingError
from pipelines.normalise.numbers import amount_problem, value_problem

_PLACES = Decimal("0.0001")
_FULL_STARS = "★⭐🌟"
_EMPTY_STARS = "☆"
_NUM = r"\d+(?:[.,]\d+)?"
# Tried in order; each names the raw value and, where shown, the scale. The third item
# says whether a source's default scale may replace the implied one: a percentage is out
# of 100 whatever the source says, "4.5 stars" is out of 5 unless the source says 10.
_PATTERNS: list[tuple[re.Pattern[str], Decimal | None, bool]] = [
    (
        re.compile(rf"(?P<raw>{_NUM})\s*(?:/|out of|of|von|aus|из|sur)\s*(?P<scale>{_NUM})", re.I),
        None,
        False,
    ),
    (re.compile(rf"(?P<raw>{_NUM})\s*%"), Decimal(100), False),
    (re.compile(rf"(?P<raw>{_NUM})\s*(?:stars?|sterne?|[{_FULL_STARS}])", re.I), Decimal(5), True),
    (re.compile(rf"[{_FULL_STARS}]\s*(?P<raw>{_NUM})"), Decimal(5), True),
]
_STAR_RUN = re.compile(rf"[{_FULL_STARS}{_EMPTY_STARS}½⯪]+")
_BARE = re.compile(rf"(?<![\d.,])(?P<raw>{_NUM})(?![\d.,])")
_GROUPED = r"\d{1,3}(?:[,.\s\u00a0\u202f'’]\d{3})+"
_COUNT = re.compile(rf"(?P<num>{_GROUPED}|\d+(?:[.,]\d+)?)\s*(?P<suffix>[kKmM])?(?!\w)")
_SUFFIX = {"k": 1_000, "m": 1_000_000}
SCALE_CAP = Decimal(100)  # percent is the widest scale markets use
COUNT_CAP = Decimal(10) ** 9  # no market has a billion reviews, sales or listings


@dataclass(frozen=True, slots=True)
class Rating:
    """A rating as shown (``raw`` out of ``scale``) and as ``value`` in 0–1 (4 places)."""

    value: Decimal
    raw: Decimal
    scale: Decimal
    text: str


def parse_rating(text: str, *, scale: Decimal | None = None) -> Rating:
    """Read a rating and put it on 0–1 so markets with different scales compare.

    ``x/y``, ``x out of y``, ``x von y``, ``x sur y`` and ``x из y`` carry their own scale, and
    percentages are out of 100, whatever ``scale`` says: a value that states its scale is
    read by what it states. A number next to a star is out of 5 unless ``scale`` says
    otherwise; a run of star glyphs counts filled (★, ⭐; ½ as a half) out of all. A bare
    number needs ``scale``.
    A minus sign, exponent notation or a scale above 100 raises ``RatingError``.

    >>> parse_rating("4.87/5").value, parse_rating("98.5 %").value
    (Decimal('0.9740'), Decimal('0.9850'))
    >>> parse_rating("★★★★☆").raw
    Decimal('4')
    >>> parse_rating("Trust 94%", scale=Decimal(5)).value
    Decimal('0.9400')
    """
    for pattern, implied, overridable in _PATTERNS:
        match = pattern.search(text)
        if match:
            for group in match.groupdict():
                _check(text, match.span(group))
            raw = _decimal(match.group("raw"))
            shown = match.groupdict().get("scale")
            if shown:
                chosen: Decimal | None = _decimal(shown)
            else:
                chosen = (scale or implied) if overridable else implied
            return _rating(raw, chosen, text)
    stars = _STAR_RUN.search(text)
    if stars:
        run = stars.group()
        halves = sum(ch in "½⯪" for ch in run)
        raw = Decimal(sum(ch in _FULL_STARS for ch in run))
        raw += Decimal("0.5") * halves if halves else 0
        stated = any(ch in _EMPTY_STARS or ch in "½⯪" for ch in run)  # "★★★★☆" is out of 5
        return _rating(raw, Decimal(len(run)) if stated else (scale or Decimal(len(run))), text)
    bare = _BARE.search(text)
    if bare is None:
        raise RatingError(text, "no rating")
    if scale is None:
        raise RatingError(text, "no scale shown and none given")
    _check(text, bare.span("raw"))
    return _rating(_decimal(bare.group("raw")), scale, text)


def parse_count(text: str) -> int:
    """Read a count of ratings, reviews or sales ("1,234 ratings", "(1.234)", "12k").

    Separators between groups of three digits are grouping, whatever the locale. A ``k`` or
    ``M`` suffix multiplies, so ``"12k"`` is 12000 and ``"1.2k"`` 1200: the market rounded,
    and the true count is only known to that precision.
    A minus sign, exponent notation or a count above a billion raises ``RatingError``.

    >>> parse_count("1,234 ratings"), parse_count("(1.234)"), parse_count("1.2k")
    (1234, 1234, 1200)
    """
    match = _COUNT.search(text)
    if match is None:
        raise RatingError(text, "no count")
    _check(text, match.span("num"))
    number, suffix = match.group("num"), match.group("suffix")
    if suffix:
        value = _decimal(number) * _SUFFIX[suffix.lower()]
        if value != value.to_integral_value():
            raise RatingError(text, "count with a fraction")
    elif re.fullmatch(_GROUPED, number):
        value = Decimal(re.sub(r"\D", "", number))
    elif not number.isdigit():
        raise RatingError(text, "count with a fraction")
    else:
        value = Decimal(number)
    problem = value_problem(value, COUNT_CAP)
    if problem is not None:
        raise RatingError(text, f"count: {problem}")
    return int(value)


def _check(text: str, span: tuple[int, int]) -> None:
    problem = amount_problem(text, *span)
    if problem is not None:
        raise RatingError(text, problem)


def _rating(raw: Decimal, scale: Decimal | None, text: str) -> Rating:
    if scale is None or scale <= 0:
        raise RatingError(text, "no usable scale")
    if scale > SCALE_CAP:
        raise RatingError(text, f"scale {scale} above {SCALE_CAP}")
    if raw < 0 or raw > scale:
        raise RatingError(text, f"rating {raw} outside 0–{scale}")
    value = (raw / scale).quantize(_PLACES, ROUND_HALF_EVEN)
    return Rating(value, raw, scale, text)


def _decimal(number: str) -> Decimal:
    # Ratings never have grouping, so a comma is always the decimal mark ("4,87/5").
    return Decimal(number.replace(",", "."))
