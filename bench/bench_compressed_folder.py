"""What an embedded server's data folder would take if its tables were compressed.

SecantusDB creates its WiredTiger tables without block or key-prefix compression and has no
setting for them, while real MongoDB compresses collections (snappy by default, zstd or
zlib on request) and index keys (prefix compression). This copies every table of a stopped
server's folder, record by record, into new tables created with `block_compressor` and
`prefix_compression`, and prints the bytes each variant takes: the same records, stored as
a compressing server would. The folder itself is only read (a copy is opened, because
opening a WiredTiger home may replay its journal).

    .venv/bin/python bench/bench_compressed_folder.py DATA_FOLDER/db

The WiredTiger Python bindings come with secantusdb (WiredTiger is GPL-2.0 or GPL-3.0, so
our GPL-3.0 code may import them; secantus itself, GPL-2.0-only, is never imported). Their
build has `zlib` and `lz4` built in, not `snappy` or `zstd`.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import tempfile
from pathlib import Path

import wiredtiger

logger = logging.getLogger(__name__)

# (block compressor, key prefix compression): stored as it is, then as MongoDB would.
VARIANTS = (("none", False), ("none", True), ("lz4", True), ("zlib", True))


def tables(session: wiredtiger.Session) -> list[tuple[str, str, str]]:
    """Every table of the home: (uri, key format, value format)."""
    found = []
    cursor = session.open_cursor("metadata:", None, None)
    for uri, config in cursor:
        if uri.startswith("table:"):
            key = re.search(r"key_format=([^,]+)", config)
            value = re.search(r"value_format=([^,]+)", config)
            found.append((uri, key.group(1) if key else "u", value.group(1) if value else "u"))
    cursor.close()
    return found


def copied_size(source: Path, target: Path, compressor: str, prefix: bool) -> int:
    """Bytes of `target` once every table of `source` is bulk-loaded into it."""
    target.mkdir()
    src = wiredtiger.wiredtiger_open(str(source), "log=(enabled=true)")
    dst = wiredtiger.wiredtiger_open(str(target), "create,log=(enabled=false)")
    try:
        read, write = src.open_session(), dst.open_session()
        block = "" if compressor == "none" else f",block_compressor={compressor}"
        for uri, key_format, value_format in tables(read):
            write.create(
                uri,
                f"key_format={key_format},value_format={value_format}{block},"
                f"prefix_compression={'true' if prefix else 'false'}",
            )
            reader = read.open_cursor(uri, None, None)
            writer = write.open_cursor(uri, None, "bulk")
            while reader.next() == 0:
                writer.set_key(*reader.get_keys())
                writer.set_value(*reader.get_values())
                writer.insert()
            reader.close()
            writer.close()
        write.checkpoint()
    finally:
        dst.close()
        src.close()
    return sum(p.stat().st_size for p in target.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a stopped server's WiredTiger home (…/db)")
    args = parser.parse_args()
    original = sum(p.stat().st_size for p in args.folder.rglob("*") if p.is_file())
    print(f"{'as the server left it':<34} {original:>14,} B")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "source"
        shutil.copytree(args.folder, home)
        for compressor, prefix in VARIANTS:
            size = copied_size(home, Path(tmp) / f"{compressor}-{prefix}", compressor, prefix)
            name = f"copied, {compressor}{', key prefixes' if prefix else ''}"
            print(f"{name:<34} {size:>14,} B  ({original / size:.2f}x smaller)")


if __name__ == "__main__":
    main()
