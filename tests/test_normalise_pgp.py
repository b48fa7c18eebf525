"""PGP public keys as vendors paste them on profile pages.

Vendor profiles show the armoured key inside prose ("My PGP key: … Always encrypt!"),
indented by the page template, with Windows line ends or NBSPs, sometimes with the blank
line after the armour headers lost, and sometimes cut off by a length limit. Keys are made
fresh with pysequoia so no real vendor key is stored here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pysequoia
import pytest

from pipelines.normalise import PgpError, pgp_fingerprint


@pytest.fixture(scope="module")
def cert() -> pysequoia.Cert:
    # Tsk.generate: Cert.generate is deprecated in pysequoia 0.1.35.
    return pysequoia.Tsk.generate("Test <t@example.invalid>").extract_certificate()


def _drop_blank_after_headers(armour: str) -> str:
    return re.sub(r"\n\n", "\n", armour, count=1)


def _no_headers(armour: str) -> str:
    return "\n".join(line for line in armour.split("\n") if not line.startswith("Comment:"))


VARIANTS: list[tuple[str, Callable[[str], str]]] = [
    ("as armoured", lambda a: a),
    ("surrounding whitespace", lambda a: f"\n\n   {a}   \n\n"),
    ("prose around", lambda a: f"My PGP key:\n{a}\nAlways encrypt your address!"),
    ("indented", lambda a: "\n".join("        " + line for line in a.split("\n"))),
    ("windows line ends", lambda a: a.replace("\n", "\r\n")),
    ("nbsp padding", lambda a: a.replace("\n", "\u00a0\n")),
    ("blank line lost", _drop_blank_after_headers),
    ("no headers", _no_headers),
    ("two keys, first wins", lambda a: a + "\n\n" + a),
]


@pytest.mark.parametrize(("name", "variant"), VARIANTS, ids=[name for name, _ in VARIANTS])
def test_pgp_fingerprint(cert: pysequoia.Cert, name: str, variant: Callable[[str], str]) -> None:
    fingerprint = pgp_fingerprint(variant(str(cert)))
    assert fingerprint == cert.fingerprint.upper()
    assert re.fullmatch(r"[0-9A-F]{40}", fingerprint)


def _truncated(armour: str) -> str:
    return armour[: len(armour) // 2]


def _truncated_with_end(armour: str) -> str:
    return armour[: len(armour) // 2] + "\n-----END PGP PUBLIC KEY BLOCK-----\n"


def _corrupted(armour: str) -> str:
    # Zero the first body line: the primary key packet's header no longer parses.
    lines = armour.split("\n")
    first = lines.index("") + 1
    lines[first] = "A" * len(lines[first])
    return "\n".join(lines)


FAILURES: list[tuple[str, Callable[[str], str], str]] = [
    ("garbage", lambda a: "garbage", "no PGP public key block"),
    ("empty", lambda a: "", "no PGP public key block"),
    ("fingerprint line only", lambda a: "Fingerprint: 1234 5678", "no PGP public key block"),
    ("truncated", _truncated, "truncated"),
    ("truncated, END added", _truncated_with_end, "unreadable"),
    ("corrupted body", _corrupted, "unreadable"),
    (
        "empty block",
        lambda a: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----",
        "unreadable",
    ),
]


@pytest.mark.parametrize(
    ("name", "variant", "reason"), FAILURES, ids=[name for name, _, _ in FAILURES]
)
def test_pgp_fingerprint_fails(
    cert: pysequoia.Cert, name: str, variant: Callable[[str], str], reason: str
) -> None:
    armoured = variant(str(cert))
    with pytest.raises(PgpError, match=reason) as info:
        pgp_fingerprint(armoured)
    assert info.value.text == armoured
    assert "Stack backtrace" not in str(info.value)
