"""`darkarchive session set|check|show <source>`: the human side of a market login."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def cmd_session_set(args: argparse.Namespace) -> int:
    """Store the cookie(s) a person got by logging in; values are read from stdin, never argv.

    (A value on the command line would sit in the shell history and in `ps` for all to see.)
    """
    from crawler.session import cookie_names
    from crawler.session_store import StoredSession, save_session
    from crawler.sources.loader import load_source

    source = load_source(args.source)
    names = args.cookie or cookie_names(source)
    if not names:
        print(
            f"darkarchive: which cookie holds the login for {source.id}? Give its name with "
            "--cookie NAME (your browser shows it), or set session.cookie in the source file",
            file=sys.stderr,
        )
        return 2
    cookies = {}
    for name in names:
        if sys.stdin.isatty():
            value = getpass.getpass(f"value of cookie {name!r} for {source.id}: ")
        else:
            value = sys.stdin.readline().strip()
        if not value:
            print(f"darkarchive: no value given for cookie {name!r}", file=sys.stderr)
            return 2
        cookies[name] = value
    session = StoredSession(cookies, user_agent=args.user_agent, expires_at=args.expires)
    path = save_session(source.id, session)
    print(f"session for {source.id} stored in {path} (owner-only): {session.describe()}")
    print(f"check it: darkarchive session check {source.id}")
    return 0


def cmd_session_show(args: argparse.Namespace) -> int:
    from crawler.session_store import load_session, session_path

    session = load_session(args.source)
    if session is None:
        print(f"no stored session for {args.source} ({session_path(args.source)})")
        return 1
    print(f"{args.source}: {session.describe()}")
    return 0 if session.status != "expired" else 1


def cmd_session_check(args: argparse.Namespace) -> int:
    """Fetch the source's first start page with the session and say what page came back.

    `--mirror` replaces the source's first mirror, but only on a host the source names (its
    mirrors, `tor.allow_hosts`): the session cookie never goes anywhere else.
    """
    from urllib.parse import urljoin

    from crawler.middlewares.onion_guard import is_onion
    from crawler.one_page import DownloadLimitError, fetch_page
    from crawler.pagestate import CONTENT_STATES, classify
    from crawler.replay import rebuild_response
    from crawler.session import may_receive_session, named_hosts, session_cookies
    from crawler.session_store import load_session, mark_session
    from crawler.sources.loader import load_source
    from crawler.tor.config import TorConfigError
    from crawler.tor.control import TorUnavailable

    source = load_source(args.source)
    mirror = (args.mirror or source.mirrors[0]).rstrip("/")
    url = urljoin(mirror + "/", source.start_pages[0].lstrip("/"))
    if not url.startswith(("http://", "https://")) or not may_receive_session(source, url):
        hosts = ", ".join(sorted(named_hosts(source)))
        print(
            f"darkarchive: refused: {mirror} is not a host of {source.id} (its mirrors and "
            f"tor.allow_hosts: {hosts}); the session is sent nowhere else",
            file=sys.stderr,
        )
        return 2
    if source.network != "tor" and is_onion(url):
        print(f"darkarchive: {url} is an onion; {source.id} is not a Tor source", file=sys.stderr)
        return 2
    stored = load_session(source.id)
    try:
        status, headers, body = fetch_page(
            source, url, session_cookies(source), stored.user_agent if stored else None
        )
    except DownloadLimitError as exc:
        print(f"darkarchive: could not check the session: {exc}", file=sys.stderr)
        return 1
    except (TorUnavailable, TorConfigError, OSError) as exc:
        print(f"darkarchive: could not check the session, {url} unreachable: {exc}")
        return 1
    state = classify(source, rebuild_response(url, status, headers, body, "index"), "index")
    if state in CONTENT_STATES:
        mark_session(source.id, "working", f"{url} gave a page in state {state}")
        print(f"session for {source.id} works: {url} gave a page in state {state}")
        return 0
    if state == "login_wall":
        mark_session(source.id, "expired", f"{url} gave a login page")
        print(f"session for {source.id} is not valid: {url} gave a login page")
    else:
        print(f"could not tell: {url} gave a page in state {state} (HTTP {status})")
    return 1
