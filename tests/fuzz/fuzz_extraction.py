"""Coverage-guided fuzzing of extraction: mutated saved pages must never raise out of it.

Each input is one line naming a saved case (`<source>/<kind>/<case>` under
`fixtures/pages/`), then the body bytes. The case gives the URL, headers, kind and fetch
time; the mutated body goes through the real `read_page` and `normalise_page`, exactly as
replay reads a saved page. Any exception is a crash (atheris exits 77 and writes
`crash-*`). Besides libFuzzer's byte mutations, one mutation in four is markup-aware: an
absurd value in place of a text node, a node nested thousands deep, a row repeated. Run it
by hand for a long while:

    nice .venv/bin/python tests/fuzz/fuzz_extraction.py NEW_DIR tests/fuzz/corpus \
        -dict=tests/fuzz/html.dict -max_total_time=720 -timeout=20 -max_len=65536

(new inputs go to the first folder; keep the seed corpus in the repo small). With a file
as argument, libFuzzer runs that input once (how a regression case is replayed).
"""

from __future__ import annotations

import json
import random
import re
import sys
import zlib
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import atheris

with atheris.instrument_imports(include=["crawler", "pipelines", "parsel", "w3lib"]):
    from crawler.pages import read_page
    from crawler.replay import PAGES_DIR, rebuild_response
    from crawler.sources.loader import load_source
    from pipelines.normalise_pipeline import normalise_page

if TYPE_CHECKING:
    from crawler.sources.model import Source

CASES = sorted(str(p.parent.relative_to(PAGES_DIR)) for p in PAGES_DIR.glob("*/*/*/inputs"))


@cache
def _source(name: str) -> Source:
    return load_source(name)


@cache
def _meta(case: str) -> dict[str, Any]:
    return json.loads((PAGES_DIR / case / "inputs" / "response.json").read_text("utf-8"))


def seed(case: str) -> bytes:
    """A corpus file for one saved case: its name line, then its body."""
    return case.encode() + b"\n" + (PAGES_DIR / case / "inputs" / "body.html").read_bytes()


def split(data: bytes) -> tuple[str, bytes]:
    """The saved case an input names (any name line maps onto one case) and its body."""
    name, _, body = data.partition(b"\n")
    case = name.decode("utf-8", "replace")
    if case not in CASES:
        case = CASES[zlib.crc32(name) % len(CASES)]
    return case, body


#: what a hostile market writes where a value goes: absurd numbers, dates, bytes
VALUES = (
    b"1e999 BTC", b"$1e999", b"-5 BTC", b"NaN BTC", b"Infinity", b"0x1p9999 XMR",
    b"12345678901234567890123456789012345678901234567890 BTC", b"\xe2\x82\xac-0,00",
    b"3000 years ago", b"in 5 days", b"31/02/2026", b"0000-00-00", b"99999-12-31",
    b"-1/5", b"6/5", b"\xe2\x98\x85" * 40, b"101%", b"1e6 kg", b"0 x 0 g", b"-3 pcs",
    b"\xff\xfe\xc3\x28", b"&#0;&#xD800;&#x110000;", b"<![CDATA[", b"<!--", b"", b" " * 500,
)  # fmt: skip
#: tags repeated around a node, deep or wide
TAGS = (b"div", b"p", b"b", b"table", b"tr", b"li", b"span", b"pre", b"br")
_TEXT = re.compile(rb">([^<>]{1,200})<")


def _markup_mutation(body: bytes, rng: random.Random) -> bytes:
    """Change the page as a hostile market would: a value, the nesting, a repeated row."""
    texts = list(_TEXT.finditer(body))
    choice = rng.randrange(3)
    if choice == 0 and texts:  # an absurd value where a market wrote one
        text = rng.choice(texts)
        return body[: text.start(1)] + rng.choice(VALUES) + body[text.end(1) :]
    if choice == 1 and texts:  # a node nested deep
        text, tag, depth = rng.choice(texts), rng.choice(TAGS), rng.choice((50, 500, 3000))
        opened, closed = b"<" + tag + b">", b"</" + tag + b">"
        return (
            body[: text.start(1)] + opened * depth + text[1] + closed * depth + body[text.end(1) :]
        )
    rows = [m for m in re.finditer(rb"<(tr|li|div)\b[^>]*>.*?</\1>", body[:20_000])]
    if not rows:
        return body
    row = rng.choice(rows)  # a row repeated: many tiers, much feedback
    return body[: row.end()] + row[0] * rng.choice((2, 20, 200)) + body[row.end() :]


def mutate(data: bytes, max_size: int, seed: int) -> bytes:
    """libFuzzer's byte mutations mostly; one in four times a markup-aware one."""
    rng = random.Random(seed)
    if rng.random() < 0.75:
        return atheris.Mutate(data, max_size)
    name, _, body = data.partition(b"\n")
    return (name + b"\n" + _markup_mutation(body, rng))[: max(max_size, 1)]


def one_input(data: bytes) -> None:
    """Read one mutated page as replay does; anything raised is a finding."""
    case, body = split(data)
    meta = _meta(case)
    kind = meta["kind"]
    response = rebuild_response(meta["url"], meta["status"], meta["headers"], body, kind)
    source = _source(case.split("/", 1)[0])
    fetched_at = datetime.fromisoformat(meta["fetched_at"])
    item = read_page(source, response, kind, fetched_at=fetched_at)
    normalise_page(item, source)


def main() -> None:
    atheris.Setup(sys.argv, one_input, custom_mutator=mutate)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
