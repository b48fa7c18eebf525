"""The schedule file and the clock: validation, durations, hours windows, next due, backoff.

The rows are what a research team writes in config/schedules.yaml, and the mistakes they
make in it; the due times are checked against croniter and fixed UTC instants.
"""

from __future__ import annotations

import doctest
import importlib
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.scheduling.config import (
    DEFAULT_SCHEDULES,
    ScheduleConfigError,
    load_schedules,
    schedules_path,
)
from crawler.scheduling.outcomes import describe_exit, outcome
from crawler.scheduling.timing import (
    Backoff,
    HoursWindow,
    Timing,
    format_duration,
    next_utc_midnight,
    parse_duration,
)

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def at(hhmm: str, day: int = 30) -> datetime:
    hours, minutes = hhmm.split(":")
    return datetime(2026, 11, day, int(hours), int(minutes), tzinfo=UTC)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(text)
    return path


# -- the schedule file --------------------------------------------------------------------


def test_the_shipped_example_loads() -> None:
    schedules = load_schedules(DEFAULT_SCHEDULES)
    assert {"demo", "classic"} <= set(schedules.sources)
    demo = schedules.sources["demo"]
    assert demo.every == 86400 and demo.jitter == 3600 and demo.enabled
    assert str(demo.allowed_hours) == "01:00-06:00"
    assert schedules.backoff.factor == 1.5 and schedules.backoff.cap == 86400


def test_the_file_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DARKARCHIVE_SCHEDULES", raising=False)
    assert schedules_path() == DEFAULT_SCHEDULES
    path = write(tmp_path, "sources: {shop: {every: 90m}}")
    monkeypatch.setenv("DARKARCHIVE_SCHEDULES", str(path))
    assert schedules_path() == path
    assert load_schedules().sources["shop"].every == 5400


def test_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
max_concurrent: 3
backoff: {factor: 2, cap: 6h}
sources:
  demo:
    every: 1h30m
    jitter: 600
    allowed_hours: "22:00-04:00"
    daily_page_budget: 500
    enabled: false
    mirror: http://127.0.0.1:8800
    args: ["-s", "DOWNLOAD_DELAY=2"]
  classic:
    cron: "30 2 * * *"
    mirror: [http://127.0.0.1:1, http://127.0.0.1:2]
""",
    )
    schedules = load_schedules(path)
    assert schedules.max_concurrent == 3
    assert schedules.backoff.backoff == Backoff(2.0, 21600.0)
    demo, classic = schedules.sources["demo"], schedules.sources["classic"]
    assert demo.timing == Timing(5400.0, None, 600.0, HoursWindow(22 * 60, 4 * 60))
    assert (demo.daily_page_budget, demo.enabled) == (500, False)
    assert demo.crawl_args() == ["--mirror", "http://127.0.0.1:8800", "-s", "DOWNLOAD_DELAY=2"]
    assert classic.cron == "30 2 * * *" and classic.every is None
    assert classic.crawl_args() == [
        "--mirror",
        "http://127.0.0.1:1",
        "--mirror",
        "http://127.0.0.1:2",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sources: {demo: {every: soon}}", "key sources.demo.every: Value error, expected a "
         "duration such as 24h, 90m, 30s or 1h30m (got 'soon')"),
        ("sources: {demo: {every: 0}}", "key sources.demo.every: Input should be greater than 0"),
        ("sources: {demo: {every: -5}}", "key sources.demo.every: Value error, expected a "
         "duration of zero seconds or more (got -5)"),
        ("sources: {demo: {cron: '61 * * * *'}}", "key sources.demo.cron: Value error, expected "
         'a cron expression such as "30 2 * * *" (UTC)'),
        ("sources: {demo: {jitter: 1h}}", "key sources.demo: Value error, expected exactly one "
         "of every (an interval) or cron"),
        ("sources: {demo: {every: 1h, cron: '0 3 * * *'}}", "expected exactly one of every"),
        ("sources: {demo: {every: 1h, jitter: a while}}", "key sources.demo.jitter: Value error"),
        ("sources: {demo: {every: 1h, allowed_hours: '25:00-01:00'}}",
         "key sources.demo.allowed_hours: Value error, '25:00-01:00' is not a time range"),
        ("sources: {demo: {every: 1h, allowed_hours: 'nights'}}",
         'key sources.demo.allowed_hours: Value error, expected hours of the UTC day such as '
         '"01:00-06:00"'),
        ("sources: {demo: {every: 1h, allowed_hours: '03:00-03:00'}}",
         "leave allowed_hours out to allow every hour"),
        ("sources: {demo: {every: 1h, daily_page_budget: 0}}",
         "key sources.demo.daily_page_budget: Input should be greater than 0 (got 0)"),
        ("sources: {demo: {every: 1h, enabled: perhaps}}", "key sources.demo.enabled: Input "
         "should be a valid boolean"),
        ("sources: {demo: {every: 1h, mirrors: [x]}}", "key sources.demo.mirrors: Extra inputs "
         "are not permitted"),
        ("sources: {demo: {every: 1h, args: 5}}", "key sources.demo.args: Input should be a "
         "valid list"),
        ("sources: {'a:b': {every: 1h}}", "key sources: Value error, 'a:b' is not a source id"),
        ("max_concurrent: 0", "key max_concurrent: Input should be greater than or equal to 1"),
        ("backoff: {factor: 0.5}", "key backoff.factor: Input should be greater than or equal "
         "to 1"),
        ("backoff: {cap: never}", "key backoff.cap: Value error, expected a duration"),
        ("sources: [demo]", "key sources: Input should be a valid dictionary"),
        ("- demo", "expected a mapping of keys at the top level"),
        ("sources: {demo: [", "not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_file_names_the_file_the_key_and_what_was_expected(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScheduleConfigError) as caught:
        load_schedules(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ScheduleConfigError, match=r"nowhere\.yaml: no such schedule file"):
        load_schedules(tmp_path / "nowhere.yaml")


# -- durations and hours ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", 86400),
        ("90m", 5400),
        ("30s", 30),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("2m 30s", 150),
        ("45", 45),
        (45, 45),
        (2.5, 2.5),
        (0, 0),
        ("0s", 0),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "5x", "1h and a bit", "-3s", True, -1])
def test_not_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(86400, "1d"), (5400, "1h30m"), (20, "20s"), (4.5, "4.5s"), (0, "0s")]
)
def test_durations_as_written(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("window", "when", "inside"),
    [
        ("01:00-06:00", "01:00", True),
        ("01:00-06:00", "05:59", True),
        ("01:00-06:00", "06:00", False),  # the end is not part of it
        ("01:00-06:00", "00:59", False),
        ("01:00-06:00", "12:00", False),
        ("22:00-04:00", "22:00", True),  # crossing midnight
        ("22:00-04:00", "23:59", True),
        ("22:00-04:00", "00:00", True),
        ("22:00-04:00", "03:59", True),
        ("22:00-04:00", "04:00", False),
        ("22:00-04:00", "21:59", False),
        ("18:00-24:00", "23:59", True),
        ("18:00-24:00", "00:00", False),
        ("00:00-00:30", "00:15", True),
    ],
)
def test_hours_window(window: str, when: str, inside: bool) -> None:
    assert HoursWindow.parse(window).contains(at(when)) is inside


@pytest.mark.parametrize(
    ("window", "when", "next_start"),
    [
        ("01:00-06:00", at("00:30"), at("01:00")),
        ("01:00-06:00", at("07:00"), at("01:00") + timedelta(1)),
        ("01:00-06:00", at("01:00"), at("01:00")),
        ("22:00-04:00", at("04:30"), at("22:00")),
        ("22:00-04:00", at("22:30"), at("22:00") + timedelta(1)),
    ],
)
def test_next_window_start(window: str, when: datetime, next_start: datetime) -> None:
    assert HoursWindow.parse(window).next_start(when) == next_start


# -- when a source is next due ------------------------------------------------------------

NO_BACKOFF = Backoff(1.5, 86400)


def due(timing: Timing, started: datetime, failures: int = 0, seed: int = 0) -> datetime:
    return timing.next_due(started, failures=failures, backoff=NO_BACKOFF, rng=random.Random(seed))


@pytest.mark.parametrize(
    ("every", "expected"),
    [
        (86400, T0 + timedelta(days=1)),
        (5400, T0 + timedelta(minutes=90)),
        (30, T0 + timedelta(seconds=30)),
    ],
)
def test_interval(every: float, expected: datetime) -> None:
    assert due(Timing(every=every), T0) == expected


@pytest.mark.parametrize(
    ("cron", "started", "expected"),
    [
        ("30 2 * * *", at("10:00"), at("02:30") + timedelta(days=1)),
        ("30 2 * * *", at("01:00"), at("02:30")),
        ("*/15 * * * *", at("10:07"), at("10:15")),
        ("0 3 * * 1", at("10:00"), datetime(2026, 12, 7, 3, 0, tzinfo=UTC)),  # a Monday
    ],
)
def test_cron(cron: str, started: datetime, expected: datetime) -> None:
    from croniter import croniter

    assert croniter(cron, started).get_next(datetime) == expected
    assert due(Timing(cron=cron), started) == expected


@pytest.mark.parametrize("every", [20.0, 86400.0])
@pytest.mark.parametrize("jitter", [3.0, 3600.0])
def test_jitter_stays_in_its_bounds(every: float, jitter: float) -> None:
    timing, rng = Timing(every=every, jitter=jitter), random.Random(7)
    delays = [
        (timing.next_due(T0, failures=0, backoff=NO_BACKOFF, rng=rng) - T0).total_seconds()
        for _ in range(2000)
    ]
    assert every <= min(delays) and max(delays) <= every + jitter
    assert max(delays) - min(delays) > 0.9 * jitter  # it is spread, not constant


@pytest.mark.parametrize(
    ("window", "started", "every", "earliest", "latest"),
    [
        # due inside the window: unchanged
        ("01:00-06:00", at("02:00"), 3600, at("03:00"), at("03:00") + timedelta(minutes=10)),
        # due after the window: tomorrow's window
        ("01:00-06:00", at("05:30"), 3600, at("01:00") + timedelta(1), at("06:00") + timedelta(1)),
        # due before the window: today's
        ("01:00-06:00", at("00:00"), 1800, at("01:00"), at("01:10")),
        # crossing midnight: due at 12:00, waits for 22:00
        ("22:00-04:00", at("11:00"), 3600, at("22:00"), at("22:10")),
        # crossing midnight: due at 01:00 the next day, inside
        ("22:00-04:00", at("23:00"), 7200, at("01:00") + timedelta(1), at("01:10") + timedelta(1)),
    ],
)  # fmt: skip
def test_allowed_hours(
    window: str, started: datetime, every: float, earliest: datetime, latest: datetime
) -> None:
    hours = HoursWindow.parse(window)
    timing = Timing(every=every, jitter=600, allowed_hours=hours)
    for seed in range(50):
        when = due(timing, started, seed=seed)
        assert earliest <= when <= latest, (seed, when)
        assert hours.contains(when)


def test_a_window_shorter_than_the_jitter_keeps_the_start_inside() -> None:
    hours = HoursWindow.parse("03:00-03:30")
    timing = Timing(every=86400, jitter=7200, allowed_hours=hours)
    for seed in range(200):
        assert hours.contains(due(timing, at("05:00"), seed=seed))


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 20), (1, 30), (2, 45), (3, 67.5), (4, 101.25), (5, 120), (9, 120)],
)
def test_backoff_multiplies_by_one_and_a_half_up_to_the_cap(failures: int, delay: float) -> None:
    backoff = Backoff(1.5, 120)
    assert backoff.delay(20, failures) == delay
    timing = Timing(every=20)
    when = timing.next_due(T0, failures=failures, backoff=backoff, rng=random.Random())
    assert when == T0 + timedelta(seconds=delay)


def test_backoff_never_shortens_a_long_interval() -> None:
    assert Backoff(1.5, 3600).delay(86400, 3) == 86400


def test_success_resets_the_backoff() -> None:
    """The delay follows the failures in a row; a success (0 failures) is back to `every`."""
    backoff, timing, failures, delays = Backoff(1.5, 3600), Timing(every=60), 0, []
    for code in (1, 3, 2, 0, 6, 0):
        failures = 0 if outcome(code) == "success" else failures + 1
        when = timing.next_due(T0, failures=failures, backoff=backoff, rng=random.Random())
        delays.append((when - T0).total_seconds())
    assert delays == [90, 135, 202.5, 60, 90, 60]


def test_backoff_on_a_cron_schedule_stays_on_the_cron_grid() -> None:
    timing = Timing(cron="0 * * * *")  # hourly
    started = at("10:00")
    assert due(timing, started) == at("11:00")
    backed_off = timing.next_due(
        started, failures=2, backoff=Backoff(1.5, 86400), rng=random.Random()
    )
    assert backed_off == at("13:00")  # 2.25 h later, then the next hour on the grid


def test_next_utc_midnight() -> None:
    assert next_utc_midnight(at("23:59")) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_utc_midnight(at("00:00")) == datetime(2026, 12, 1, tzinfo=UTC)


# -- exit codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "counted", "meaning"),
    [
        (0, "success", "complete"),
        (1, "failure", "failed"),
        (2, "failure", "configuration error"),
        (3, "failure", "database unreachable"),
        (4, "success", "partial"),
        (5, "refused", "refused"),
        (6, "failure", "interrupted"),
        (70, "failure", "exit 70"),
        (-9, "failure", "killed by SIGKILL"),
    ],
)
def test_exit_codes(code: int, counted: str, meaning: str) -> None:
    assert outcome(code) == counted
    assert describe_exit(code) == meaning


@pytest.mark.parametrize("module", ["timing", "outcomes"])
def test_docstring_examples(module: str) -> None:
    results = doctest.testmod(importlib.import_module(f"crawler.scheduling.{module}"))
    assert results.attempted and not results.failed
