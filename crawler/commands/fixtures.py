"""`darkarchive fixtures …`: serve the synthetic markets, print their truth, save replay pages."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def cmd_fixtures_serve(args: argparse.Namespace) -> int:
    from fixtures.server import serve_forever

    serve_forever(args.market, args.day, args.host, args.port)
    return 0


def cmd_fixtures_truth(args: argparse.Namespace) -> int:
    from fixtures.market import truth

    json.dump(truth(args.market, args.day), sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


def cmd_fixtures_save_page(args: argparse.Namespace) -> int:
    """Fetch one page and save it as a replay case (clearnet http(s) only until Tor lands)."""
    import urllib.error
    import urllib.request

    from crawler.middlewares.onion_guard import is_onion
    from crawler.replay import PAGES_DIR, save_case
    from crawler.sources.loader import load_source

    source = load_source(args.source)
    if not args.url.startswith(("http://", "https://")) or is_onion(args.url):
        print(
            f"darkarchive: save-page takes clearnet http(s) URLs, not {args.url}", file=sys.stderr
        )
        return 2
    if source.network == "tor":
        print("saving pages of a Tor source is not supported yet (no Tor routing)", file=sys.stderr)
        return 2
    fetched_at = datetime.now(UTC)
    try:
        with urllib.request.urlopen(args.url, timeout=30) as response:
            body, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:  # a 404 or a 503 page is a page worth replaying
        body, status, headers = error.read(), error.code, dict(error.headers)
    except (urllib.error.URLError, TimeoutError) as error:
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
