"""Vendor identities across sources: accounts linked by evidence, never merged.

A vendor who sells on two markets usually signs with one PGP key: an equal key fingerprint
is exact evidence. A similar handle and bio is weaker evidence, scored; two accounts whose
keys differ are not linked on that alone (their similarity is kept as a contradicted
candidate, for a person to judge). Links are stored with their evidence in `vendor_links`;
a recomputation adds and retracts links, it never deletes one, and the accounts themselves
are never touched, so every analysis can say which evidence it trusted.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import SequenceMatcher
from itertools import combinations
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne

from pipelines.store.codec import from_bson
from pipelines.store.schema import SOURCES, current_collection

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pymongo.database import Database

logger = logging.getLogger(__name__)

LINKS = "vendor_links"
NAME_SIMILARITY = 0.85  # SequenceMatcher ratio of folded handles
BIO_SIMILARITY = 0.30  # Jaccard of bio words

Account = tuple[str, str]  # (source, vendor key)


@dataclass(frozen=True)
class Profile:
    """What linking reads of one vendor account (its current version)."""

    source: str
    key: str
    name: str
    bio: str
    fingerprint: str | None

    @property
    def account(self) -> Account:
        return (self.source, self.key)


def fold(text: str) -> str:
    """Lower-case letters and digits only, accents removed: `Amber_Marble` → `ambermarble`."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.casefold())


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w{3,}", text.casefold()))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def profiles(db: Database) -> list[Profile]:
    """Every vendor account of every source, listed or not: one indexed scan per source."""
    found = []
    for source in sorted(d["_id"] for d in db[SOURCES].find({}, {"_id": 1})):
        for doc in db[current_collection("vendor")].find({"source": source}):
            content = from_bson(doc.get("content") or {})
            fingerprint = content.get("pgp_fingerprint")
            found.append(
                Profile(
                    source,
                    doc["key"],
                    str(content.get("name") or doc["key"]),
                    str(content.get("bio") or ""),
                    str(fingerprint).upper() if fingerprint else None,
                )
            )
    return found


def evidence(a: Profile, b: Profile) -> dict[str, Any] | None:
    """Why two accounts of different sources may be one vendor, or None."""
    if a.fingerprint and a.fingerprint == b.fingerprint:
        return {
            "strength": "exact",
            "score": 1.0,
            "evidence": [{"kind": "pgp_fingerprint", "value": a.fingerprint, "score": 1.0}],
        }
    name = SequenceMatcher(None, fold(a.name), fold(b.name)).ratio()
    bio = _jaccard(_words(a.bio), _words(b.bio))
    if name < NAME_SIMILARITY or bio < BIO_SIMILARITY:
        return None
    found = [
        {"kind": "name", "value": [a.name, b.name], "score": round(name, 3)},
        {"kind": "bio", "score": round(bio, 3)},
    ]
    if a.fingerprint and b.fingerprint:  # different keys: not the same signer
        found.append({"kind": "pgp_conflict", "value": [a.fingerprint, b.fingerprint]})
        return {"strength": "contradicted", "score": 0.0, "evidence": found}
    return {"strength": "weak", "score": round((name + bio) / 2, 3), "evidence": found}


def link_id(a: Account, b: Account) -> str:
    first, second = sorted((a, b))
    return f"{first[0]}:{first[1]}|{second[0]}:{second[1]}"


def link_vendors(db: Database) -> dict[str, int]:
    """Recompute the links of all sources; returns how many links of each strength are
    active, and how many were retracted (no longer supported by today's accounts)."""
    now = datetime.now(UTC)
    accounts = profiles(db)
    found: dict[str, dict[str, Any]] = {}
    for a, b in combinations(accounts, 2):
        if a.source == b.source:
            continue
        link = evidence(a, b)
        if link is not None:
            found[link_id(a.account, b.account)] = {
                "accounts": [
                    {"source": p.source, "key": p.key, "name": p.name}
                    for p in sorted((a, b), key=lambda p: p.account)
                ],
                **link,
            }
    ops: list[Any] = [
        UpdateOne(
            {"_id": lid},
            {
                "$set": {**link, "active": True, "computed_at": now},
                "$setOnInsert": {"first_linked_at": now},
                "$unset": {"retracted_at": ""},
            },
            upsert=True,
        )
        for lid, link in found.items()
    ]
    retract = [
        UpdateOne({"_id": d["_id"]}, {"$set": {"active": False, "retracted_at": now}})
        for d in db[LINKS].find({"active": True}, {"_id": 1})
        if d["_id"] not in found
    ]
    if ops or retract:
        db[LINKS].bulk_write([*ops, *retract], ordered=False)
    summary = {"accounts": len(accounts), "retracted": len(retract)}
    for link in found.values():
        summary[link["strength"]] = summary.get(link["strength"], 0) + 1
    logger.info("vendor links: %s", summary)
    return summary


def active_links(db: Database, strengths: Iterable[str] = ("exact",)) -> list[dict[str, Any]]:
    return list(db[LINKS].find({"active": True, "strength": {"$in": list(strengths)}}))


def identities(db: Database, *, include_weak: bool = False) -> list[set[Account]]:
    """Accounts grouped by the links trusted (exact only, unless `include_weak`)."""
    strengths = ("exact", "weak") if include_weak else ("exact",)
    parent: dict[Account, Account] = {}

    def root(a: Account) -> Account:
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    for link in active_links(db, strengths):
        first, second = ((x["source"], x["key"]) for x in link["accounts"])
        parent[root(first)] = root(second)
    groups: dict[Account, set[Account]] = {}
    for account in list(parent):
        groups.setdefault(root(account), set()).add(account)
    return list(groups.values())


def identity_of(
    db: Database, source: str, key: str, *, include_weak: bool = False
) -> dict[str, Any]:
    """The accounts linked to (source, key), the evidence, and their listings on every source."""
    group = next(
        (g for g in identities(db, include_weak=include_weak) if (source, key) in g),
        {(source, key)},
    )
    strengths = ("exact", "weak") if include_weak else ("exact",)
    links = [
        from_bson(link)
        for link in active_links(db, strengths)
        if {(x["source"], x["key"]) for x in link["accounts"]} <= group
    ]
    listings = {
        f"{s}:{k}": [
            doc["key"]
            for doc in db[current_collection("listing")].find(
                {"source": s, "content.vendor": k, "status": "listed"}, {"key": 1}
            )
        ]
        for s, k in sorted(group)
    }
    return {"accounts": sorted(group), "links": links, "listings": listings}
