"""Each entity a run observed, as it was then, joined with what the run displayed: by key.

A run's versions, its observation lists, its rereads and its pages' displayed entries
each come from their own indexed read, none of them in key order. They are joined by key
in one merge pass over records sorted in bounded memory (keyed_merge.py), so reading a
run of a million listings holds one chunk of records, not the run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bson import decode

from pipelines.store.displayed import add_shown, displayed_entries
from pipelines.store.keyed_merge import CHUNK_BYTES, KeySorter
from pipelines.store.observations import observed_key_stream
from pipelines.store.rereads import apply_overlay, rereads_in_run
from pipelines.store.schema import versions_collection
from pipelines.store.valid_in_run import versions_in_run, with_decimals

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from pymongo.database import Database

logger = logging.getLogger(__name__)

# What a record of a key is; `entities_in_run` folds them in whatever order they come.
SEEN, VERSION, REREAD, SHOWN = range(4)
OBSERVATIONS_BATCH = 2  # observation documents per reply: up to 20,000 keys each


def entities_in_run(
    db: Database,
    run: Mapping[str, Any],
    kind: str,
    *,
    reader: str | None = None,
    shown: bool = False,
    unobserved: bool = False,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """`(entity, displayed)` for each entity of `kind` run `run` observed, ordered by key;
    with `unobserved`, also each entity valid in the run that it did not see (a partial
    run's), every entity then saying whether it was `observed`.

    The entity is the version valid in the run (`queries.observed` says which), replaced,
    added or dropped by `reader`'s rereads (`rereads.apply_overlay`); `displayed` is what
    the run's pages showed beside it (its `displayed_entries`, folded by `add_shown`), read
    only with `shown`, else None. At most `chunk_bytes` of pickled records are held; the rest
    wait in temporary files that are removed when the iteration ends, early or on error.
    """
    run_id, source, seq = run["_id"], run["source"], run["seq"]
    missing, examples = 0, list[str]()
    with KeySorter(chunk_bytes) as sorter:
        for key in observed_key_stream(db, run_id, kind, batch_size=OBSERVATIONS_BATCH):
            sorter.add(key, (SEEN, None))
        if sorter.added or unobserved:  # a run that observed none has no version to read
            # Kept as BSON bytes (cheap to pickle), decoded once when its key comes up.
            for doc in versions_in_run(db, source, kind, seq, raw=True):
                sorter.add(doc["key"], (VERSION, bytes(doc.raw)))  # not a view of the batch
        if reader is not None:
            for key, read_again in rereads_in_run(db, source, kind, seq, reader):
                sorter.add(key, (REREAD, read_again))
        if shown:
            for key, url, entry in displayed_entries(db, run_id, kind):
                sorter.add(key, (SHOWN, (url, entry)))
        options = with_decimals(db[versions_collection(kind)].codec_options)
        for key, records in sorter.groups():
            seen, version, reread, displayed = _fold(records)
            if seen and version is None:
                missing += 1
                if len(examples) < 3:
                    examples.append(key)
            # What the run observed has its version, as `observed` always had it (and with
            # `unobserved`, what was valid in it unseen).
            found: dict[str, dict[str, Any]] = {}
            if version is not None and (seen or unobserved):
                found[key] = _entity(decode(version, options))
                if unobserved:
                    found[key]["observed"] = seen
            if reread is not None:
                apply_overlay(found, {key: reread})
            if key in found:
                yield found[key], displayed
    if missing:
        logger.warning(
            "run %s: %d observed %ss have no version (e.g. %s)", run_id, missing, kind, examples
        )


def _fold(
    records: Iterable[tuple[int, Any]],
) -> tuple[bool, bytes | None, dict[str, Any] | None, dict[str, Any] | None]:
    """A key's records, as the whole-run dicts had them: the last version and reread win;
    displayed entries fold in page order, under the first page's URL."""
    seen, version, reread, displayed = False, None, None, None
    for tag, value in records:
        if tag == SEEN:
            seen = True
        elif tag == VERSION:
            version = value
        elif tag == REREAD:
            reread = value
        else:
            url, entry = value
            if displayed is None:
                displayed = {"url": url}
            add_shown(displayed, entry)
    return seen, version, reread, displayed


def _entity(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "key": doc["key"],
        "v": doc["v"],
        "content": doc["content"],
        "provenance": doc["provenance"],
        "first_seen_run": doc["first_seen_run"],
    }
