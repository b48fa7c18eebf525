"""An export for publication: one file per table, and a manifest a paper can cite.

The manifest names exactly what was used: the runs and their completeness, the parser
versions, the row count and SHA-256 of every file, the query that made it and the
darkarchive version. Anyone holding the files can check them against it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.exports.filters import ExportFilter, Kept
from pipelines.exports.tables import (
    Options,
    feedback_rows,
    listing_rows,
    page_rows,
    run_row,
    vendor_rows,
)
from pipelines.exports.warc import write_warc
from pipelines.exports.writers import write_table
from pipelines.parser_version import package_version
from pipelines.store.codec import from_bson
from pipelines.store.rereads import reading_parser
from pipelines.store.schema import RUNS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pymongo.database import Database

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}


@dataclass
class ExportRequest:
    """What to export; recorded as the manifest's `query`."""

    source: str
    first_seq: int
    last_seq: int
    fmt: str = "jsonl"
    pseudonymise_key: str | None = field(default=None, repr=False)
    no_text: bool = False
    warc: bool = False
    parser: str | None = None  # a reading of the runs; None: each run's newest
    rule: ExportFilter = field(default_factory=ExportFilter)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "runs": [self.first_seq, self.last_seq],
            "format": self.fmt,
            "pseudonymised": self.pseudonymise_key is not None,  # never the key itself
            "free_text": not self.no_text,
            "warc": self.warc,
            "parser": self.parser or "newest",
            "filter": self.rule.describe(),
        }


def export_dataset(db: Database, request: ExportRequest, out_dir: Path) -> dict[str, Any]:
    """Write the tables (and WARC files) of the request's runs to `out_dir`; the manifest."""
    # Every run of the source, once: the panel's, and those feedback was first seen in.
    by_seq = {r["seq"]: from_bson(r) for r in db[RUNS].find({"source": request.source})}
    runs = [  # closed runs only: an open run has nothing stable to export
        run
        for seq, run in sorted(by_seq.items())
        if request.first_seq <= seq <= request.last_seq and run["status"] != "running"
    ]
    if not runs:
        raise KeyError(
            f"no closed run of {request.source} between seq {request.first_seq} and "
            f"{request.last_seq}"
        )
    read_by = {r["_id"]: _reader(db, r, request.parser) for r in runs}
    out_dir.mkdir(parents=True, exist_ok=True)
    options = Options(pseudonymise_key=request.pseudonymise_key, no_text=request.no_text)
    ext = EXTENSIONS[request.fmt]
    last = runs[-1]
    tables: dict[str, Iterator[dict[str, Any]]] = {
        "runs": (run_row(r) for r in runs),
        "listings": (row for r in runs for row in listing_rows(db, r, read_by[r["_id"]])),
        "vendors": (row for r in runs for row in vendor_rows(db, r, read_by[r["_id"]])),
        # A panel publishes each feedback entry once, as its last run knew it.
        "feedback": feedback_rows(db, last, by_seq),
        "pages": (row for r in runs for row in page_rows(db, r)),
    }
    if request.rule:  # tables are written in order: listings are read before the rest
        kept = Kept(request.rule)
        tables["listings"] = kept.listing_rows(tables["listings"])
        tables["vendors"] = kept.vendor_rows(tables["vendors"])
        tables["feedback"] = kept.feedback_rows(tables["feedback"])
    files: dict[str, dict[str, Any]] = {}
    for table, rows in tables.items():
        path = out_dir / f"{table}.{ext}"
        count = write_table(table, (options.apply(table, row) for row in rows), path, request.fmt)
        files[path.name] = {"table": table, "rows": count, "sha256": _sha256(path)}
    if request.warc:
        for run in runs:
            path = out_dir / f"pages-{run['seq']:06d}.warc.gz"
            count = write_warc(db, run, path, version=package_version())
            files[path.name] = {"table": "warc", "run": run["_id"], "records": count,
                                "sha256": _sha256(path)}  # fmt: skip
    manifest = {
        "darkarchive_version": package_version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "query": request.describe(),
        "runs": [
            {
                "run": r["_id"],
                "seq": r["seq"],
                "status": r["status"],
                "complete": r["status"] == "complete",
                "reasons": r.get("reasons") or [],
                "parser_version": r.get("parser_version"),
                "read_by": read_by[r["_id"]],
            }
            for r in runs
        ],
        "parser_versions": sorted(set(read_by.values())),
        "files": files,
        "schema": "README.md, section 'Exports for publication'",
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    logger.info("exported %d run(s) of %s to %s", len(runs), request.source, out_dir)
    return manifest


def _reader(db: Database, run: dict[str, Any], parser: str | None) -> str:
    """The parser version whose reading of `run` the export holds."""
    return reading_parser(db, run["_id"], parser) or str(run.get("parser_version"))


def verify(out_dir: Path) -> list[str]:
    """Files whose SHA-256 no longer matches the manifest (empty: all verify)."""
    manifest = json.loads((out_dir / MANIFEST).read_text())
    return [
        name
        for name, entry in manifest["files"].items()
        if not (out_dir / name).is_file() or _sha256(out_dir / name) != entry["sha256"]
    ]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
