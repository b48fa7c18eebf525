"""The synthetic vendors' OpenPGP keys are real certificates, stable across builds."""

from __future__ import annotations

import pysequoia
import pytest

from fixtures.market import MARKETS, truth
from fixtures.market.generate import shared_vendor_accounts
from fixtures.pgp import build_cert


@pytest.mark.parametrize("market", MARKETS)
def test_every_vendor_key_parses_with_our_fingerprint(market: str) -> None:
    vendors = truth(market, 1)["vendors"]
    assert vendors
    # An account planted as a demo vendor's second account signs with the owner's key.
    owners = {
        account: owner
        for group in shared_vendor_accounts()
        for owner in group
        if owner[0] == "demo"
        for account in group
    }
    names = {v["vendor_id"]: v["name"] for v in truth("demo", 1)["vendors"]}
    for vendor in vendors:
        cert = pysequoia.Cert.from_bytes(vendor["pgp_key"].encode())
        assert cert.fingerprint == vendor["pgp_fingerprint"].lower()
        home, key = owners.get((market, vendor["vendor_id"]), (market, vendor["vendor_id"]))
        name = names[key] if home == "demo" else vendor["name"]
        assert [str(uid) for uid in cert.user_ids] == [f"{name} <{key}@{home}.invalid>"]
        assert "PRIVATE" not in vendor["pgp_key"]  # public material only


def test_keys_are_identical_across_builds() -> None:
    first = build_cert(b"seed", "Someone <someone@demo.invalid>", 1_700_000_000)
    second = build_cert(b"seed", "Someone <someone@demo.invalid>", 1_700_000_000)
    assert first == second
    assert first.armoured.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n")
    assert len(first.fingerprint) == 40
    assert first.fingerprint == first.fingerprint.upper()


def test_different_seeds_give_different_keys() -> None:
    one = build_cert(b"one", "A <a@demo.invalid>", 1_700_000_000)
    two = build_cert(b"two", "A <a@demo.invalid>", 1_700_000_000)
    assert one.fingerprint != two.fingerprint


def test_vendor_keys_match_between_days() -> None:
    day1 = {v["vendor_id"]: v["pgp_key"] for v in truth("demo", 1)["vendors"]}
    day2 = {v["vendor_id"]: v["pgp_key"] for v in truth("demo", 2)["vendors"]}
    assert day1 == day2
