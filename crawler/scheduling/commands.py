"""`darkarchive scheduler` and `darkarchive schedule show`."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler import exit_codes
from crawler.commands.shared import archive_connection, print_archive_location
from crawler.config_errors import ConfigFileError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

logger = logging.getLogger(__name__)


def add_schedule_commands(commands: argparse._SubParsersAction) -> None:
    """The scheduler's subcommands, added to `darkarchive`'s."""
    scheduler = commands.add_parser(
        "scheduler", help="crawl every source of config/schedules.yaml when it is due"
    )
    scheduler.add_argument(
        "--once", action="store_true",
        help="start every source due now, wait for them, and exit (for cron)",
    )  # fmt: skip
    scheduler.add_argument(
        "--tick", type=float, default=5.0, metavar="SECONDS", help="loop period (default 5)"
    )
    scheduler.add_argument(
        "--metrics-port", type=int, default=None, metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT",
    )  # fmt: skip
    scheduler.add_argument(
        "--stop-grace", type=float, default=600.0, metavar="SECONDS",
        help="on SIGTERM, how long crawls may take to close their runs (default 600)",
    )  # fmt: skip
    scheduler.set_defaults(func=cmd_scheduler)

    schedule = commands.add_parser("schedule", help="the crawl schedule and how it went")
    schedule_commands = schedule.add_subparsers(dest="schedule_command", required=True)
    show = schedule_commands.add_parser(
        "show", help="per source: next due, last start, last exit, failures, recent attempts"
    )
    show.add_argument("--format", choices=["text", "json"], default="text")
    show.add_argument("--attempts", type=int, default=5, help="recent attempts (default 5)")
    show.set_defaults(func=cmd_schedule_show)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from crawler.scheduling.config import load_schedules
    from crawler.scheduling.metrics import serve_metrics
    from crawler.scheduling.scheduler import Scheduler

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s [%(name)s] %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        schedules = load_schedules()
    except ConfigFileError as exc:
        print(f"darkarchive: bad schedule file: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    _warn_unknown_sources(schedules.sources)
    with archive_connection() as connection:
        print_archive_location(connection)
        scheduler = Scheduler(
            schedules,
            connection.db,
            env=os.environ,  # the crawls find the same archive (the embedded one is shared)
            log_level=args.log_level,
            once=args.once,
            tick=args.tick,
            stop_grace=args.stop_grace,
        )
        stop_metrics = None
        if args.metrics_port is not None:
            try:
                stop_metrics = serve_metrics(
                    args.metrics_port, connection.db, lambda: scheduler.states
                )
            except OSError as exc:
                print(
                    f"darkarchive: cannot serve metrics on 127.0.0.1:{args.metrics_port}: {exc}",
                    file=sys.stderr,
                )
                return exit_codes.CONFIG_ERROR
        try:
            return scheduler.run()
        finally:
            if stop_metrics is not None:
                stop_metrics()


def _warn_unknown_sources(sources: Iterable[str]) -> None:
    from crawler.scheduling.config import schedules_path
    from crawler.sources.loader import source_path

    for source in sources:
        if not source_path(source).is_file():
            logger.warning(
                "%s is scheduled in %s but %s does not exist; its crawls will fail",
                source,
                schedules_path(),
                source_path(source),
            )


def cmd_schedule_show(args: argparse.Namespace) -> int:
    from crawler.scheduling.config import load_schedules
    from crawler.scheduling.show import print_json, print_text, schedule_report
    from crawler.scheduling.state import ScheduleStore

    try:
        schedules = load_schedules()
    except ConfigFileError as exc:
        print(f"darkarchive: bad schedule file: {exc}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    with archive_connection() as connection:
        documents = ScheduleStore(connection.db).documents()
    report = schedule_report(schedules, documents, attempts=max(args.attempts, 0))
    if args.format == "json":
        print_json(report)
    else:
        print_text(report, datetime.now(UTC))
    return 0
