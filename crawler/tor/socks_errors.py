"""What a failed request through Tor means: Tor's SOCKS replies turned into crawl decisions.

Tor answers a failed SOCKS CONNECT with a reply code; with `ExtendedErrors` on the SocksPort
it says exactly why an onion service was unreachable (0xF0–0xF7). httpcore2's SOCKS client
(via socksio) knows only RFC 1928's codes and reports Tor's as a "Malformed reply", so
`teach_socks_client` registers Tor's codes with it once, before the first Tor request.
"""

from __future__ import annotations

import enum
import errno
import logging
import re
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

Action = Literal["retry", "give_up", "tor_down"]


@dataclass(frozen=True)
class TorFailure:
    """One failed request, classified: `code` is the SOCKS reply (None when no reply)."""

    kind: str
    action: Action
    code: int | None = None
    #: failures of this kind suggest a bad circuit: a new identity may help
    circuit: bool = False

    @property
    def reason(self) -> str:
        code = f" (SOCKS 0x{self.code:02X})" if self.code is not None else ""
        return f"{self.kind}{code}"


# RFC 1928 replies as Tor uses them, then Tor's ExtendedErrors (tor's socks5.trunnel and
# doc/spec/socks-extensions): (text, action, circuit-related).
SOCKS_REPLIES: dict[int, tuple[str, Action, bool]] = {
    0x01: ("general SOCKS server failure", "retry", True),
    0x02: ("connection not allowed by ruleset", "give_up", False),
    0x03: ("network unreachable", "retry", True),
    0x04: ("host unreachable", "retry", True),
    0x05: ("connection refused", "retry", False),
    0x06: ("TTL expired", "retry", True),
    0x07: ("command not supported", "give_up", False),
    0x08: ("address type not supported", "give_up", False),
    0xF0: ("onion service descriptor can not be found", "retry", True),
    0xF1: ("onion service descriptor is invalid", "give_up", False),
    0xF2: ("onion service introduction failed", "retry", True),
    0xF3: ("onion service rendezvous failed", "retry", True),
    0xF4: ("onion service missing client authorization", "give_up", False),
    0xF5: ("onion service wrong client authorization", "give_up", False),
    0xF6: ("onion service invalid address", "give_up", False),
    0xF7: ("onion service introduction timed out", "retry", True),
}
TOR_EXTENDED = range(0xF0, 0xF8)
_REPLY_TEXT = re.compile(r"Proxy Server could not connect: (.+?)\.?$")


def teach_socks_client() -> None:
    """Let socksio parse Tor's extended replies and httpcore2 name them. Idempotent."""
    import socksio.socks5
    from httpcore2._async import socks_proxy as async_proxy
    from httpcore2._sync import socks_proxy as sync_proxy

    codes = socksio.socks5.SOCKS5ReplyCode
    if getattr(codes, "_darkarchive_tor", False):
        return
    members: dict[bytes, enum.Enum] = {}
    for code in TOR_EXTENDED:
        value = bytes([code])
        member = bytes.__new__(codes, value)
        member._name_ = f"TOR_{code:02X}"
        member._value_ = value
        members[value] = member

    def _missing_(cls: type, value: object) -> enum.Enum | None:
        return members.get(value) if isinstance(value, bytes) else None

    codes._missing_ = classmethod(_missing_)  # type: ignore[assignment, method-assign]
    codes._darkarchive_tor = True  # type: ignore[attr-defined]
    for value in members:
        text = _reply_text(value[0])
        async_proxy.REPLY_CODES[value] = text
        sync_proxy.REPLY_CODES[value] = text


def _reply_text(code: int) -> str:
    return f"{SOCKS_REPLIES[code][0]} [0x{code:02X}]"


def classify(error: BaseException) -> TorFailure | None:
    """Read a download error (and its causes) as a Tor failure; None if it is not one."""
    chain = list(_causes(error))
    names = {type(e).__name__ for e in chain}
    for exc in chain:
        match = _REPLY_TEXT.search(str(exc))
        if match:
            code = _code_for(match.group(1))
            if code is not None:
                text, action, circuit = SOCKS_REPLIES[code]
                return TorFailure(text, action, code, circuit)
            return TorFailure(f"SOCKS failure: {match.group(1)}", "retry", None, True)
    if "Malformed reply" in " ".join(str(e) for e in chain):
        return TorFailure("malformed SOCKS reply", "retry", None, True)
    if names & {"DownloadTimeoutError", "TimeoutError", "ConnectTimeout", "ReadTimeout"}:
        return TorFailure("timed out through Tor", "retry", None, True)
    for exc in chain:
        if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) in (
            errno.ECONNREFUSED,
            errno.ECONNRESET,
        ):
            return TorFailure("Tor's SOCKS port refused the connection", "tor_down")
    if names & {"ConnectError", "DownloadConnectionRefusedError"}:
        return TorFailure("could not reach Tor's SOCKS port", "tor_down")
    return None


def _code_for(text: str) -> int | None:
    bracket = re.search(r"\[0x([0-9A-F]{2})\]", text)
    if bracket:
        return int(bracket.group(1), 16)
    for code, (known, _, _) in SOCKS_REPLIES.items():
        if known.lower() == text.strip().lower():
            return code
    return None


def _causes(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
