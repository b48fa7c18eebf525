"""Fingerprints of the PGP public keys vendors paste on their profiles."""

from __future__ import annotations

import re

import pysequoia

from pipelines.normalise.errors import PgpError

_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_END = "-----END PGP PUBLIC KEY BLOCK-----"
_BLOCK = re.compile(re.escape(_BEGIN) + r"(?P<body>.*?)" + re.escape(_END), re.DOTALL)
_HEADER = re.compile(r"^[A-Za-z][A-Za-z-]*: ")


def pgp_fingerprint(armoured: str) -> str:
    """Fingerprint (40 upper-case hex digits for v4 keys) of the first armoured public key.

    The fingerprint is what identifies a vendor across markets and over time, so it is read
    from the key itself with Sequoia, never from a "Fingerprint:" line the vendor typed. Text
    around the block is ignored, and the armour is rebuilt line by line first, because
    profile pages indent it, pad it with NBSPs or lose the blank line after the headers.
    Raises ``PgpError`` when there is no block, it is cut off, or the key does not parse.
    """
    text = armoured.replace("\r\n", "\n").replace("\u00a0", " ")
    match = _BLOCK.search(text)
    if match is None:
        reason = "truncated armour (no END line)" if _BEGIN in text else "no PGP public key block"
        raise PgpError(armoured, reason)
    try:
        cert = pysequoia.Cert.from_bytes(_rebuild(match.group("body")).encode("ascii"))
    except Exception as exc:  # pysequoia raises plain exceptions for every parse failure
        # The first line is Sequoia's reason; a Rust backtrace may follow it.
        reason = str(exc).strip().split("\n", 1)[0]
        raise PgpError(armoured, f"unreadable public key ({reason})") from exc
    return str(cert.fingerprint).upper()


def _rebuild(body: str) -> str:
    lines = [line.strip() for line in body.split("\n")]
    lines = [line for line in lines if line]
    headers = []
    while lines and _HEADER.match(lines[0]):
        headers.append(lines.pop(0))
    return "\n".join([_BEGIN, *headers, "", *lines, _END, ""])
