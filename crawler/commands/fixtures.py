"""`darkarchive fixtures …`: serve the synthetic markets, print their truth, save replay pages."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import argparse


def cmd_fixtures_serve(args: argparse.Namespace) -> int:
    from fixtures.server import serve_forever

    if args.onion:
        return serve_onion(args.market, args.day)
    serve_forever(args.market, args.day, args.host, args.port, noise=args.noise)
    return 0


def serve_onion(market: str, day: int) -> int:
    """The market behind an onion service on a private Tor network, until Ctrl-C."""
    import threading

    from crawler.commands.shared import home
    from fixtures.onion import onion_market

    workdir = home() / "tornet"
    print("starting a private Tor network on loopback (usually 20-40 s)...", flush=True)
    with onion_market(market, day, workdir) as onion:
        config = workdir / "tor.yaml"
        config.write_text(onion.tor_config(), encoding="utf-8")
        print(f"fixture market {market!r} day {day} at {onion.url} (private Tor network)")
        print(f"Tor client: SOCKS {onion.endpoint.socks}, control {onion.endpoint.control}")
        print(f"crawl it:  DARKARCHIVE_TOR_CONFIG={config} darkarchive crawl {market}-onion")
        print(f"check it:  DARKARCHIVE_TOR_CONFIG={config} darkarchive tor check {market}-onion")
        print("Ctrl-C stops the market and every tor.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


def cmd_fixtures_truth(args: argparse.Namespace) -> int:
    from fixtures.market import truth

    json.dump(truth(args.market, args.day), sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


def cmd_fixtures_save_page(args: argparse.Namespace) -> int:
    """Fetch one page and save it as a replay case; a Tor source's page is fetched via Tor."""
    from crawler.middlewares.onion_guard import is_onion
    from crawler.one_page import DownloadLimitError, fetch_page
    from crawler.replay import PAGES_DIR, save_case
    from crawler.sources.loader import load_source
    from crawler.tor.config import TorConfigError
    from crawler.tor.control import TorUnavailable

    source = load_source(args.source)
    host = urlsplit(args.url).hostname or ""
    if not args.url.startswith(("http://", "https://")):
        print(f"darkarchive: save-page takes http(s) URLs, not {args.url}", file=sys.stderr)
        return 2
    if source.network == "tor" and not (is_onion(args.url) or host in source.tor.allow_hosts):
        print(
            f"darkarchive: {source.id} is a Tor source; {host} is not its onion host",
            file=sys.stderr,
        )
        return 2
    if source.network != "tor" and is_onion(args.url):
        print(
            f"darkarchive: {args.url} is an onion; {source.id} is not a Tor source", file=sys.stderr
        )
        return 2
    fetched_at = datetime.now(UTC)
    try:
        status, headers, body = fetch_page(source, args.url)
    except (TorUnavailable, TorConfigError) as error:
        print(f"darkarchive: no usable Tor: {error}", file=sys.stderr)
        return 1
    except DownloadLimitError as error:  # the crawl's limits: a bomb, an endless stream
        print(f"darkarchive: refused: {error}; nothing was saved", file=sys.stderr)
        return 1
    except OSError as error:  # httpx2's errors, and the socket's
        print(f"darkarchive: cannot fetch {args.url}: {error}", file=sys.stderr)
        return 1
    case_dir = save_case(
        source,
        url=args.url,
        kind=args.kind,
        case=args.case,
        status=status,
        headers=headers,
        body=body,
        fetched_at=fetched_at,
        root=Path(args.root) if args.root else PAGES_DIR,
    )
    print(f"saved {args.url} as {case_dir}; review {case_dir / 'output.json'}")
    return 0
