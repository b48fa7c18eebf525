"""`darkarchive scheduler`: start each source's crawl when it is due, a few at a time."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from pymongo.errors import PyMongoError

from crawler import exit_codes
from crawler.scheduling.budget import pages_left
from crawler.scheduling.children import CrawlChild, crawl_command
from crawler.scheduling.outcomes import describe_exit, outcome
from crawler.scheduling.state import Attempt, ScheduleStore, SourceState
from crawler.scheduling.timing import next_utc_midnight

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import FrameType

    from pymongo.database import Database

    from crawler.scheduling.config import Schedules, SourceSchedule

logger = logging.getLogger(__name__)


class Scheduler:
    """Runs due crawls as child processes: at most `max_concurrent` at once, never two of
    one source. Every change of a source's state is written to the `schedule` collection
    before anything else happens, so a restarted scheduler carries on from its last write.
    """

    def __init__(
        self,
        schedules: Schedules,
        db: Database,
        *,
        env: Mapping[str, str],
        log_level: str = "INFO",
        once: bool = False,
        tick: float = 5.0,
        stop_grace: float = 600.0,
        rng: random.Random | None = None,
        command: Callable[[str, list[str]], list[str]] | None = None,
    ) -> None:
        self.schedules = schedules
        self.db = db
        self.store = ScheduleStore(db)
        self.env = dict(env)
        self.once = once
        self.tick = tick
        self.stop_grace = stop_grace
        self.rng = rng or random.Random()
        # What a crawl runs: `darkarchive crawl <source> <args>` unless told otherwise.
        self.command = command or partial(crawl_command, log_level=log_level)
        self.states: dict[str, SourceState] = {}
        self.children: dict[str, CrawlChild] = {}
        self.failed_in_once = False
        self._once_queue: set[str] = set()
        self._signals = 0
        self._wake = threading.Event()

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        """Until SIGTERM/SIGINT (or, with `once`, until every source due now has run)."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.load_state(datetime.now(UTC))
            while not self._signals:
                self._reap()
                if not self._signals:
                    self._start_due(datetime.now(UTC))
                self._flush()
                if self.once and not self._once_queue and not self.children:
                    break
                self._wake.wait(self._sleep_time())
                self._wake.clear()
        finally:
            self._shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if self.once and self.failed_in_once else 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:  # asked again: pass it on (Scrapy then stops at once)
            for child in self.children.values():
                child.terminate()
        self._wake.set()

    def _sleep_time(self) -> float:
        if len(self.children) >= self.schedules.max_concurrent:
            return self.tick
        now = datetime.now(UTC)
        waits = [
            (state.next_due - now).total_seconds()
            for source, state in self.states.items()
            if state.next_due is not None and self._may_start(source)
        ]
        return max(0.05, min([self.tick, *waits]))

    def _may_start(self, source: str) -> bool:
        entry = self.schedules.sources.get(source)
        if entry is None or not entry.enabled or source in self.children:
            return False
        return source in self._once_queue if self.once else True

    # -- state ---------------------------------------------------------------------------

    def load_state(self, now: datetime) -> None:
        """The stored state of every scheduled source; a new source is due now."""
        stored = self.store.load()
        for source, entry in self.schedules.sources.items():
            state = stored.get(source) or SourceState(source)
            if state.running:
                logger.warning(
                    "%s: a crawl (pid %s) was running when the scheduler stopped; its "
                    "lease keeps a second crawl from running beside it",
                    source,
                    state.running.get("pid"),
                )
                state.running, state.dirty = None, True
            if state.next_due is None:
                state.next_due, state.dirty = entry.timing.within_hours(now, self.rng), True
            self.states[source] = state
            if self.once and entry.enabled and state.next_due <= now:
                self._once_queue.add(source)
            logger.info(
                "%s: next crawl due %s (%s)",
                source,
                state.next_due.isoformat(timespec="seconds"),
                "enabled" if entry.enabled else "disabled",
            )
        self._flush()

    def _flush(self) -> None:
        for state in self.states.values():
            if state.dirty or state.unsaved:
                try:
                    self.store.save(state)
                except PyMongoError as exc:
                    logger.warning("%s: schedule not saved (will retry): %s", state.source, exc)
                    return

    def _record(self, state: SourceState, attempt: Attempt) -> None:
        state.unsaved.append(attempt)
        state.dirty = True
        self._flush()

    # -- starting crawls -----------------------------------------------------------------

    def _start_due(self, now: datetime) -> None:
        due = sorted(
            (state.next_due, source)
            for source, state in self.states.items()
            if state.next_due is not None and state.next_due <= now and self._may_start(source)
        )
        for _, source in due:
            if len(self.children) >= self.schedules.max_concurrent:
                return
            self._once_queue.discard(source)
            try:
                self._start(source, self.schedules.sources[source], now)
            except PyMongoError as exc:
                logger.warning("%s: not started, the database failed: %s", source, exc)
                return
            except OSError as exc:
                logger.error("%s: the crawl could not be started: %s", source, exc)
                return

    def _start(self, source: str, entry: SourceSchedule, now: datetime) -> None:
        state = self.states[source]
        budget = self._page_budget(source, entry, now)
        if budget == 0:
            return
        args = entry.crawl_args()
        if budget is not None:
            args += ["-s", f"CLOSESPIDER_PAGECOUNT={budget}"]
        if (
            state.resume_run
            and state.last_started
            and entry.timing.regular_due(state.last_started) > datetime.now(UTC)
        ):  # back before its next regular crawl: finish that run
            args += ["--resume", state.resume_run]
        state.resume_run = None  # one try
        child = CrawlChild(source, self.command(source, args), self.env, on_exit=self._wake.set)
        child.page_budget, child.args = budget, args
        self.children[source] = child
        state.last_started = child.started_at
        state.running = {"pid": child.pid, "started_at": child.started_at}
        # Provisional, as if it succeeds: a scheduler restarted mid-crawl does not start it again.
        state.next_due = entry.timing.next_due(
            child.started_at,
            failures=state.consecutive_failures,
            backoff=self.schedules.backoff.backoff,
            rng=self.rng,
        )
        state.dirty = True
        self._flush()

    def _page_budget(self, source: str, entry: SourceSchedule, now: datetime) -> int | None:
        """Pages this crawl may fetch (None: no budget); 0 when today's budget is spent,
        after moving the source to the next UTC day."""
        if entry.daily_page_budget is None:
            return None
        left, used = pages_left(self.db, source, entry.daily_page_budget, now)
        if left == 0:
            state = self.states[source]
            state.next_due = entry.timing.within_hours(next_utc_midnight(now), self.rng)
            reason = f"daily page budget spent ({used} of {entry.daily_page_budget} pages)"
            logger.info("%s: %s; next crawl %s", source, reason, state.next_due.isoformat())
            attempt = Attempt(now, "skipped", reason, finished_at=now, next_due=state.next_due)
            self._record(state, attempt)
        return left

    # -- finished crawls -----------------------------------------------------------------

    def _reap(self) -> None:
        for source, child in list(self.children.items()):
            code = child.poll()
            if code is not None:
                del self.children[source]
                self._finished(source, child, code)

    def _finished(self, source: str, child: CrawlChild, code: int) -> None:
        now = datetime.now(UTC)
        state, entry = self.states[source], self.schedules.sources[source]
        kind = outcome(code)
        if kind == "failure" and child.stop_requested:  # we stopped it: not the market's fault
            kind = "stopped"
        if kind == "success":
            state.consecutive_failures = 0
        elif kind == "failure":
            state.consecutive_failures += 1
            self.failed_in_once = True
        if kind == "stopped":  # stopped by us: due again as soon as the scheduler is back
            state.next_due = entry.timing.within_hours(now, self.rng)
            if child.run_id and child.run_status == "interrupted":
                state.resume_run = child.run_id
        else:
            state.next_due = entry.timing.next_due(
                child.started_at,
                failures=state.consecutive_failures,
                backoff=self.schedules.backoff.backoff,
                rng=self.rng,
            )
        status = child.run_status or describe_exit(code)
        state.running = None
        state.last_finished, state.last_exit_code, state.last_status = now, code, status
        state.last_run_id = child.run_id or state.last_run_id
        logger.info(
            "%s: crawl ended in %.1f s: exit %d (%s)%s; %d failure(s) in a row; next due %s",
            source,
            (now - child.started_at).total_seconds(),
            code,
            status,
            f", run {child.run_id}" if child.run_id else "",
            state.consecutive_failures,
            state.next_due.isoformat(timespec="seconds"),
        )
        if code == exit_codes.PARTIAL or status == "partial":
            logger.info("%s: the run is partial; the schedule counts it as a run", source)
        attempt = Attempt(
            started_at=child.started_at,
            outcome=kind,
            status=status,
            finished_at=now,
            exit_code=code,
            run_id=child.run_id,
            pid=child.pid,
            page_budget=child.page_budget,
            next_due=state.next_due,
            args=child.args,
            message=child.message,
        )
        self._record(state, attempt)

    def _shutdown(self) -> None:
        """Stop starting crawls, SIGTERM the running ones and wait for them to close."""
        if self.children:
            logger.info("stopping: waiting for %d crawl(s) to close their runs", len(self.children))
        for child in self.children.values():
            child.terminate()
        deadline = time.monotonic() + self.stop_grace
        while self.children and time.monotonic() < deadline:
            self._reap()
            self._wake.wait(0.2)
            self._wake.clear()
        for source, child in list(self.children.items()):
            logger.warning("%s: crawl still running after %.0f s", source, self.stop_grace)
            child.kill()
        self._reap()
        self._flush()
        logger.info("scheduler stopped")
