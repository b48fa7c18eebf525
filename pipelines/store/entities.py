"""Entity versioning: a version per distinct content, a current pointer, guarded writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymongo import InsertOne, UpdateOne

from pipelines.store.codec import content_hash, to_bson, utc_ms
from pipelines.store.model import BatchSummary
from pipelines.store.schema import OPEN_SEQ, current_collection, versions_collection
from pipelines.store.tokens import TOKENS_VERSION, version_tokens
from pipelines.store.valid_in_run import REOPEN, closing
from pipelines.store.writes import bulk_ignoring_duplicates

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pymongo.collection import Collection
    from pymongo.database import Database

    from pipelines.store.model import EntityObservation, RunRef

logger = logging.getLogger(__name__)

MAX_PASSES = 3


@dataclass(frozen=True)
class EntityState:
    """What the versioning needs to know about an entity's current document."""

    v: int
    hash: str
    listed: bool
    first_seen_run: str
    parser_version: str = ""


def entity_id(source: str, key: str) -> str:
    """`"<source>:<key>"`: readable, and shard-friendly on a real cluster."""
    return f"{source}:{key}"


def version_id(source: str, key: str, v: int) -> str:
    """Deterministic, so a replayed version insert is a duplicate, not a second version."""
    return f"{source}:{key}:{v}"


def load_state(
    coll: Collection, source: str, ids: Iterable[str] | None = None
) -> dict[str, EntityState]:
    """Current state of a source's entities: one streaming indexed scan (or one `$in` query)."""
    query: dict[str, Any] = {"source": source}
    if ids is not None:
        query["_id"] = {"$in": list(ids)}
    projection = {"v": 1, "hash": 1, "status": 1, "first_seen_run": 1, "provenance": 1}
    return {
        d["_id"]: EntityState(
            d["v"],
            d["hash"],
            d.get("status") == "listed",
            d["first_seen_run"],
            (d.get("provenance") or {}).get("parser_version", ""),
        )
        for d in coll.find(query, projection, batch_size=5000)
    }


class EntityWriter:
    """Write one batch of observations of one kind; a replayed batch writes nothing new."""

    def __init__(self, db: Database, kind: str) -> None:
        self.kind = kind
        self.current = db[current_collection(kind)]
        self.versions = db[versions_collection(kind)]

    def record(
        self, run: RunRef, batch: Sequence[EntityObservation], state: dict[str, EntityState]
    ) -> BatchSummary:
        """Version the batch against `state` (the run's cached current state, updated here)."""
        latest: dict[str, EntityObservation] = {}
        for obs in batch:
            latest[obs.key] = obs  # the same entity twice in a batch: the last one wins
        # Outcome per key of its last pass, so an entity retried after a race counts once.
        outcome: dict[str, str] = {}
        pending = list(latest.values())
        for _ in range(MAX_PASSES):
            pending = self._pass(run, pending, state, outcome)
            if not pending:
                break
            fresh = load_state(
                self.current, run.source, [entity_id(run.source, o.key) for o in pending]
            )
            state.update(fresh)
            logger.warning("%d %s writes raced another writer; retrying", len(pending), self.kind)
        else:
            raise RuntimeError(
                f"{len(pending)} {self.kind} entities kept conflicting in {run.run_id}"
            )
        counts = dict.fromkeys(("new", "changed", "unchanged", "reappeared"), 0)
        for result in outcome.values():
            counts[result] += 1
        return BatchSummary(kind=self.kind, **counts)

    def _pass(
        self,
        run: RunRef,
        batch: list[EntityObservation],
        state: dict[str, EntityState],
        outcome: dict[str, str],
    ) -> list[EntityObservation]:
        """One attempt at the batch; returns the observations that lost a race."""
        version_docs: list[dict[str, Any]] = []
        closes: list[tuple[str, UpdateOne]] = []
        inserts: list[tuple[str, InsertOne]] = []
        moves: list[tuple[str, UpdateOne]] = []
        planned: dict[str, tuple[EntityObservation, EntityState, EntityState | None]] = {}
        for obs in batch:
            eid = entity_id(run.source, obs.key)
            content = to_bson(dict(obs.content))
            digest = content_hash(content)
            old = state.get(eid)
            if old is not None and old.listed and old.hash == digest:
                outcome[obs.key] = "unchanged"
                continue
            v = 1 if old is None else old.v + 1
            first_seen = run.run_id if old is None else old.first_seen_run
            vdoc = self._version_doc(run, obs, content, digest, v, first_seen)
            # A selector fix is not a market change: say which versions a new parser made.
            parser = obs.provenance.parser_version
            vdoc["parser_changed"] = old is not None and old.parser_version not in ("", parser)
            version_docs.append(vdoc)
            head = {
                "source": run.source,
                "key": obs.key,
                "v": v,
                "hash": digest,
                "status": "listed",
                "content": content,
                "provenance": vdoc["provenance"],
                "last_changed_run": run.run_id,
                "last_changed_seq": run.seq,
            }
            if old is None:
                outcome[obs.key] = "new"
                first = {"first_seen_run": run.run_id, "first_seen_seq": run.seq}
                inserts.append((eid, InsertOne({"_id": eid, **head, **first})))
            else:
                outcome[obs.key] = "changed" if old.listed else "reappeared"
                previous = {"_id": version_id(run.source, obs.key, old.v), "valid_to_seq": OPEN_SEQ}
                ended = closing(run.seq, run.run_id, "changed")  # with the buckets it spans
                closes.append((eid, UpdateOne(previous, ended)))
                unset = {"delisted_run": "", "delisted_seq": ""}
                moves.append(
                    (eid, UpdateOne({"_id": eid, "v": old.v}, {"$set": head, "$unset": unset}))
                )
            new_state = EntityState(v, digest, True, first_seen, obs.provenance.parser_version)
            planned[eid] = (obs, new_state, old)

        lost = set(self._insert_versions(version_docs))
        close_ops = [op for eid, op in closes if eid not in lost]
        insert_ops = [op for eid, op in inserts if eid not in lost]
        move_ops = [op for eid, op in moves if eid not in lost]
        bulk_ignoring_duplicates(self.versions, close_ops)
        _, dup_heads = bulk_ignoring_duplicates(self.current, insert_ops)
        moved, _ = bulk_ignoring_duplicates(self.current, move_ops)
        conflicted: set[str] = set()
        if lost or dup_heads or moved < len(move_ops):
            conflicted = lost | self._unmoved(planned)
        for eid, (_, new_state, _) in planned.items():
            if eid not in conflicted:
                state[eid] = new_state
        return [planned[eid][0] for eid in conflicted if eid in planned]

    def _version_doc(
        self,
        run: RunRef,
        obs: EntityObservation,
        content: dict[str, Any],
        digest: str,
        v: int,
        first_seen: str,
    ) -> dict[str, Any]:
        prov = obs.provenance
        return {
            "_id": version_id(run.source, obs.key, v),
            "source": run.source,
            "key": obs.key,
            "v": v,
            "hash": digest,
            "content": content,
            "provenance": {
                "run_id": run.run_id,
                "url": prov.url,
                "page_sha256": prov.page_sha256,
                "parser_version": prov.parser_version,
                "fetched_at": utc_ms(prov.fetched_at),
            },
            "first_seen_run": first_seen,
            "valid_from_seq": run.seq,
            "valid_from_run": run.run_id,
            "valid_to_seq": OPEN_SEQ,
            "valid_to_run": None,
            # Search terms (pipelines/query/tokens.py): not content, so not in the hash.
            "tokens": version_tokens(self.kind, obs.key, obs.content),
            "tokens_v": TOKENS_VERSION,
        }

    def _insert_versions(self, docs: list[dict[str, Any]]) -> list[str]:
        """Insert versions; a duplicate with other content is an orphan or a lost race.

        An orphan (left by a crash before the pointer moved) is replaced; a version another
        writer made current means this observation must be re-planned: its entity id is
        returned.
        """
        _, dups = bulk_ignoring_duplicates(self.versions, [InsertOne(d) for d in docs])
        if not dups:
            return []
        dup_docs = {docs[i]["_id"]: docs[i] for i in dups}
        # A replay is the same content from the same run. The same content left by another
        # (crashed) run is an orphan: keeping it would start this version at that run's seq
        # while the previous version ends at this one's, and the two would overlap.
        stored = {
            d["_id"]: (d["hash"], d["valid_from_seq"])
            for d in self.versions.find(
                {"_id": {"$in": list(dup_docs)}}, {"hash": 1, "valid_from_seq": 1}
            )
        }
        mismatched = [
            vid
            for vid, doc in dup_docs.items()
            if stored.get(vid) != (doc["hash"], doc["valid_from_seq"])
        ]
        if not mismatched:
            return []  # a replay of what is already stored
        heads = {
            d["_id"]: d["v"]
            for d in self.current.find(
                {
                    "_id": {
                        "$in": [
                            entity_id(dup_docs[vid]["source"], dup_docs[vid]["key"])
                            for vid in mismatched
                        ]
                    }
                },
                {"v": 1},
            )
        }
        lost: list[str] = []
        for vid in mismatched:
            doc = dup_docs[vid]
            eid = entity_id(doc["source"], doc["key"])
            if heads.get(eid, 0) < doc["v"]:
                stored_hash, stored_from = stored[vid]
                self.versions.replace_one(
                    {"_id": vid, "hash": stored_hash, "valid_from_seq": stored_from}, doc
                )
                logger.warning("replaced orphan version %s left by an interrupted write", vid)
            else:
                lost.append(eid)
        return lost

    def _unmoved(self, planned: dict[str, tuple[Any, EntityState, EntityState | None]]) -> set[str]:
        """Entities whose current pointer is not where this pass meant to put it."""
        heads = {
            d["_id"]: d
            for d in self.current.find({"_id": {"$in": list(planned)}}, {"v": 1, "hash": 1})
        }
        return {
            eid
            for eid, (_, new, _) in planned.items()
            if (h := heads.get(eid)) is None or (h["v"], h["hash"]) != (new.v, new.hash)
        }


def drop_orphans(db: Database, source: str, run_id: str, kind: str) -> int:
    """Delete the versions a run inserted but never made current (its write was cut off).

    A crash between the version insert and the pointer move leaves a version open beside
    the current one: a later run that finds the content unchanged writes nothing, and both
    would be valid at once. The version it had closed is reopened first, so a crash here is
    repaired by doing this again. Only for a run nobody is writing (interrupted, resumed).
    """
    versions = db[versions_collection(kind)]
    made = list(versions.find({"source": source, "valid_from_run": run_id}, {"key": 1, "v": 1}))
    if not made:
        return 0
    heads = load_state(db[current_collection(kind)], source)
    orphans = [
        d
        for d in sorted(made, key=lambda d: -d["v"])
        if (head := heads.get(entity_id(source, d["key"]))) is None or head.v < d["v"]
    ]
    for doc in orphans:
        previous = version_id(source, doc["key"], doc["v"] - 1)
        versions.update_one(
            {"_id": previous, "valid_to_run": run_id, "end": "changed"},
            REOPEN,
        )
        versions.delete_one({"_id": doc["_id"], "valid_from_run": run_id})
    if orphans:
        logger.warning(
            "run %s: dropped %d %s version(s) its cut-off writes never made current",
            run_id,
            len(orphans),
            kind,
        )
    return len(orphans)
