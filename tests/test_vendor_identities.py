"""Vendor accounts linked across the four fixture markets, scored against the planted truth:
one person under one PGP key on two or three markets (sometimes under another handle), and
same-name decoys with different keys."""

from __future__ import annotations

import json
import os
import uuid
from itertools import combinations
from typing import TYPE_CHECKING, Any

import pymongo
import pytest
from subprocesses import run_cli

from fixtures.market.generate import generate_world, shared_vendor_accounts
from fixtures.server import FixtureServer
from pipelines.identities import Profile, evidence, fold, link_id

if TYPE_CHECKING:
    from pymongo.database import Database

    from pipelines.store.embedded import EmbeddedMongo

MARKETS = ("demo", "classic", "grid", "shop")


@pytest.fixture(scope="module")
def linked(
    mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], Database]:
    """All four markets crawled on day 1 into one archive, then `vendors link`."""
    env = {
        **os.environ,
        "MONGODB_URI": mongo_server.uri,
        "DARKARCHIVE_DB": f"identities_{uuid.uuid4().hex[:8]}",
        "DARKARCHIVE_HOME": str(tmp_path_factory.mktemp("home")),
    }
    for market in MARKETS:
        with FixtureServer(market=market, day=1) as server:
            run_cli("crawl", market, "--mirror", server.url, env=env)
    out = run_cli("vendors", "link", env=env).stdout
    assert "exact link(s) (same PGP key)" in out
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_server.uri)
    return env, client[env["DARKARCHIVE_DB"]]


def _pairs(groups: list[set[tuple[str, str]]]) -> set[str]:
    return {link_id(a, b) for group in groups for a, b in combinations(sorted(group), 2)}


def test_pgp_links_find_every_planted_identity_and_nothing_else(
    linked: tuple[dict[str, str], Database],
) -> None:
    _, db = linked
    truth = _pairs(shared_vendor_accounts())
    exact = {d["_id"] for d in db.vendor_links.find({"active": True, "strength": "exact"})}
    true_positives = len(exact & truth)
    precision, recall = true_positives / len(exact), true_positives / len(truth)
    print(f"vendor links by PGP key: precision {precision:.3f}, recall {recall:.3f}")
    assert (precision, recall) == (1.0, 1.0)
    assert len(truth) == 6  # four identities, one of them on three markets


def test_no_same_name_decoy_is_linked_by_pgp_evidence(
    linked: tuple[dict[str, str], Database],
) -> None:
    _, db = linked
    worlds = {m: generate_world(m) for m in MARKETS}
    names: dict[str, list[tuple[str, str]]] = {}
    for market, world in worlds.items():
        for vendor in world.vendors.values():
            names.setdefault(vendor.name, []).append((market, vendor.vendor_id))
    truth = _pairs(shared_vendor_accounts())
    decoys = {
        link_id(a, b)
        for accounts in names.values()
        for a, b in combinations(sorted(accounts), 2)
        if a[0] != b[0] and link_id(a, b) not in truth
    }
    assert decoys, "the fixture markets must hold same-name vendors with different keys"
    for lid in decoys:
        link = db.vendor_links.find_one({"_id": lid})
        assert link is None or link["strength"] == "contradicted", link


def test_an_identity_shows_its_accounts_evidence_and_listings_on_every_source(
    linked: tuple[dict[str, str], Database],
) -> None:
    env, _ = linked
    (group,) = [g for g in shared_vendor_accounts() if len(g) == 3]
    source, key = sorted(group)[0]
    shown = json.loads(run_cli("vendors", "show", source, key, "--format", "json", env=env).stdout)
    assert {tuple(a) for a in shown["accounts"]} == group
    assert all(link["strength"] == "exact" for link in shown["links"]) and shown["links"]
    for market, vendor in group:
        truth = {
            lid
            for lid, listing in generate_world(market).listings.items()
            if listing.vendor_id == vendor
        }
        assert set(shown["listings"][f"{market}:{vendor}"]) == truth


BIO = "fast dispatch, honest weights"
OTHER_BIO = "stealth shipping only"
REORDERED = "honest weights, fast dispatch"


@pytest.mark.parametrize(
    ("a", "b", "strength"),
    [
        (("AmberMarble", BIO, "K1"), ("Amber_Marble", OTHER_BIO, "K1"), "exact"),
        (("AmberMarble", BIO, None), ("amber-marble", REORDERED, None), "weak"),
        (("AmberMarble", BIO, "K1"), ("AmberMarble", BIO, "K2"), "contradicted"),
        (("AmberMarble", BIO, None), ("CobaltOrbit", BIO, None), None),
        (("AmberMarble", BIO, None), ("AmberMarble", OTHER_BIO, None), None),
    ],
)  # fmt: skip
def test_evidence_between_two_accounts(
    a: tuple[str, str, str | None], b: tuple[str, str, str | None], strength: str | None
) -> None:
    found = evidence(Profile("m1", "x", *a), Profile("m2", "y", *b))
    assert (found or {}).get("strength") == strength


def test_fold() -> None:
    assert fold("Ámber_Marble 2") == fold("amber-marble2") == "ambermarble2"
