"""Saved pages that tests replay: `fixtures/pages/<source>/<kind>/<case>/`.

The layout follows web-poet's record/replay shape: `inputs/` holds the response as it was
fetched (body bytes and a `response.json` with URL, status, headers, fetch time) and
`output.json` what extraction and normalisation made of it. Reviewing a diff of
`output.json` is how a parser change is checked against pages seen in the wild.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.http import HtmlResponse, Request

from crawler.pages import read_page
from pipelines.normalise_pipeline import normalise_page, records_as_read
from pipelines.store.export import jsonable
from pipelines.store.pages import SECRET_HEADERS

if TYPE_CHECKING:
    from crawler.sources.model import Source

PAGES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "pages"


def to_json(value: Any) -> str:
    """Replay files use the export's JSON conventions (Decimals as strings, UTC with `Z`)."""
    return json.dumps(jsonable(value), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rebuild_response(
    url: str, status: int, headers: dict[str, str], body: bytes, kind: str
) -> HtmlResponse:
    """A response as the spider saw it, from what was saved or archived."""
    return HtmlResponse(
        url=url,
        status=status,
        headers=headers,
        body=body,
        request=Request(url, meta={"kind": kind}),
    )


def build_response(case: Path) -> tuple[HtmlResponse, str, datetime]:
    """The saved response, rebuilt; with the kind it was requested as and its fetch time."""
    meta = json.loads((case / "inputs" / "response.json").read_text(encoding="utf-8"))
    body = (case / "inputs" / "body.html").read_bytes()
    response = rebuild_response(meta["url"], meta["status"], meta["headers"], body, meta["kind"])
    return response, meta["kind"], datetime.fromisoformat(meta["fetched_at"])


def replay(source: Source, case: Path) -> dict[str, Any]:
    """What the current code reads from a saved page, in the shape of `output.json`."""
    response, kind, fetched_at = build_response(case)
    item = read_page(source, response, kind, fetched_at=fetched_at)
    normalise_page(item, source)
    return json.loads(
        to_json(
            {
                "state": item.state,
                "fields": item.fields,
                "rates": item.rate_quotes,
                "expected": item.expected,
                "records": [
                    {"kind": k, "key": key, "content": c} for k, key, c in records_as_read(item)
                ],
                "feedback": item.feedback,
                "problems": item.problems,
            }
        )
    )


def save_case(
    source: Source,
    *,
    url: str,
    kind: str,
    case: str,
    status: int,
    headers: dict[str, str],
    body: bytes,
    fetched_at: datetime,
    root: Path = PAGES_DIR,
) -> Path:
    """Write a page as a replay case and its current reading as the expected output."""
    case_dir = root / source.id / kind / case
    (case_dir / "inputs").mkdir(parents=True, exist_ok=True)
    (case_dir / "inputs" / "body.html").write_bytes(body)
    kept = {k: v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}
    (case_dir / "inputs" / "response.json").write_text(
        to_json(
            {
                "url": url,
                "status": status,
                "kind": kind,
                "headers": kept,
                "fetched_at": fetched_at.astimezone(UTC).isoformat(),
            }
        ),
        encoding="utf-8",
    )
    (case_dir / "output.json").write_text(to_json(replay(source, case_dir)), encoding="utf-8")
    return case_dir
