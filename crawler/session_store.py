"""Sessions a person set for a source (cookie and its user agent), kept outside the repo.

A market session comes from a human who logged in (and solved the CAPTCHA) in a browser.
`darkarchive session set` stores it under `$DARKARCHIVE_HOME/sessions/` readable by its
owner only; crawls use it and record when it stops working, so the team knows to renew it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pipelines.store.connect import darkarchive_home

if TYPE_CHECKING:
    from pathlib import Path

Status = Literal["unchecked", "working", "expired"]


@dataclass
class StoredSession:
    cookies: dict[str, str]
    user_agent: str | None = None
    set_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    #: what the market said, if anything ("valid for 7 days"): a reminder, not a rule
    expires_at: str | None = None
    status: Status = "unchecked"
    checked_at: str | None = None
    note: str = ""

    def describe(self) -> str:
        """Everything but the values."""
        names = ", ".join(sorted(self.cookies)) or "none"
        expiry = f"; the market said it expires {self.expires_at}" if self.expires_at else ""
        checked = f" (last checked {self.checked_at}: {self.note})" if self.checked_at else ""
        agent = "with its user agent" if self.user_agent else "without a user agent"
        return f"cookies {names} {agent}, set {self.set_at}{expiry}; {self.status}{checked}"


def sessions_dir() -> Path:
    return darkarchive_home() / "sessions"


def session_path(source_id: str) -> Path:
    return sessions_dir() / f"{source_id}.json"


def save_session(source_id: str, session: StoredSession) -> Path:
    """Write it readable by its owner only (0600 in a 0700 folder), replacing the old one."""
    folder = sessions_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = session_path(source_id)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(session), file, indent=2)
    os.replace(temporary, path)
    return path


def load_session(source_id: str) -> StoredSession | None:
    path = session_path(source_id)
    if not path.is_file():
        return None
    return StoredSession(**json.loads(path.read_text(encoding="utf-8")))


def mark_session(source_id: str, status: Status, note: str) -> None:
    """Record what a crawl or a check found; a missing session stays missing."""
    session = load_session(source_id)
    if session is None:
        return
    session.status, session.note = status, note
    session.checked_at = datetime.now(UTC).isoformat(timespec="seconds")
    save_session(source_id, session)
