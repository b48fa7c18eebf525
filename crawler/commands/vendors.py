"""`darkarchive vendors link|show`: one vendor's accounts across sources, with evidence."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from crawler.commands.shared import archive_connection

if TYPE_CHECKING:
    import argparse


def cmd_vendors_link(args: argparse.Namespace) -> int:
    from pipelines.identities import link_vendors

    with archive_connection() as connection:
        summary = link_vendors(connection.db)
    print(
        f"{summary['accounts']} vendor accounts: {summary.get('exact', 0)} exact link(s) "
        f"(same PGP key), {summary.get('weak', 0)} weak (similar handle and bio), "
        f"{summary.get('contradicted', 0)} similar but signed with other keys (not linked), "
        f"{summary['retracted']} retracted"
    )
    return 0


def cmd_vendors_show(args: argparse.Namespace) -> int:
    from pipelines.identities import identity_of
    from pipelines.store.export import jsonable

    with archive_connection() as connection:
        found = identity_of(connection.db, args.source, args.key, include_weak=args.weak)
    if args.format == "json":
        json.dump(jsonable(found), sys.stdout, indent=2, sort_keys=True, default=str)
        print()
        return 0
    print(f"vendor {args.source}:{args.key}: {len(found['accounts'])} account(s)")
    for source, key in found["accounts"]:
        listings = found["listings"][f"{source}:{key}"]
        print(f"  {source}:{key}  {len(listings)} listed: {', '.join(listings[:8])}")
    for link in found["links"]:
        a, b = (f"{x['source']}:{x['key']}" for x in link["accounts"])
        why = "; ".join(
            f"{e['kind']} {e.get('value', '')} ({e.get('score', '')})".strip()
            for e in link["evidence"]
        )
        print(f"  {link['strength']} link {a} = {b}: {why}")
    return 0
