"""A run's raw pages as a WARC file, for web-archive tools (pywb, `warcio check`).

Bodies are the bytes the crawl archived (already decoded), so transfer headers that no
longer describe them are dropped. Record ids are derived from the page, so the same run
gives the same records.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from http import HTTPStatus
from io import BytesIO
from typing import TYPE_CHECKING, Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.store.run_pages import page_body, run_pages

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pymongo.database import Database

DROPPED = frozenset({"content-encoding", "transfer-encoding", "content-length"})


def write_warc(db: Database, run: Mapping[str, Any], path: Path, *, version: str) -> int:
    """Every archived response of `run` (those with a body) as a `response` record."""
    count = 0
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.1")
        info = {"software": f"darkarchive {version}", "run": run["_id"], "source": run["source"]}
        writer.write_record(writer.create_warcinfo_record(path.name, info))
        for page in run_pages(db, run["_id"], having="sha256"):
            writer.write_record(_record(writer, page, page_body(db, page)))
            count += 1
    return count


def _record(writer: WARCWriter, page: Mapping[str, Any], body: bytes) -> Any:
    status = int(page.get("status") or 200)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    headers = [
        (name, str(value))
        for name, value in sorted((page.get("headers") or {}).items())
        if name.lower() not in DROPPED
    ]
    headers.append(("Content-Length", str(len(body))))
    fetched = page["fetched_at"]
    if fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=UTC)
    record_id = uuid.uuid5(uuid.NAMESPACE_URL, f"darkarchive:{page['_id']}")
    return writer.create_warc_record(
        page["url"],
        "response",
        payload=BytesIO(body),
        length=len(body),
        http_headers=StatusAndHeaders(f"{status} {reason}", headers, protocol="HTTP/1.1"),
        warc_headers_dict={
            "WARC-Date": fetched.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "WARC-Record-ID": f"<urn:uuid:{record_id}>",
        },
    )
