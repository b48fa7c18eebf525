"""The schedule file (config/schedules.yaml): which source is crawled when; validated on load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from crawler.config_errors import ConfigFileError
from crawler.config_files import load_model
from crawler.scheduling.timing import Backoff, HoursWindow, Timing, parse_duration

DEFAULT_SCHEDULES = Path(__file__).resolve().parents[2] / "config" / "schedules.yaml"

Seconds = Annotated[float, BeforeValidator(parse_duration)]


def _window(value: object) -> HoursWindow | None:
    if value is None or isinstance(value, HoursWindow):
        return value
    if not isinstance(value, str):
        raise ValueError('expected hours of the UTC day such as "01:00-06:00"')
    return HoursWindow.parse(value)


def _strings(value: object) -> object:
    """One string or a list of them."""
    return [value] if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class SourceSchedule(_Strict):
    """When one source is crawled, and with which crawl arguments."""

    every: Seconds | None = Field(default=None, gt=0)
    cron: str | None = None
    jitter: Seconds = 0.0
    allowed_hours: Annotated[HoursWindow | None, BeforeValidator(_window)] = None
    daily_page_budget: int | None = Field(default=None, gt=0)
    enabled: bool = True
    mirror: Annotated[list[str], BeforeValidator(_strings)] = []
    args: Annotated[list[str], BeforeValidator(_strings)] = []

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError('expected a cron expression such as "30 2 * * *" (UTC)')
        return value

    @model_validator(mode="after")
    def _one_clock(self) -> SourceSchedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("expected exactly one of every (an interval) or cron")
        return self

    @property
    def timing(self) -> Timing:
        return Timing(self.every, self.cron, self.jitter, self.allowed_hours)

    def crawl_args(self) -> list[str]:
        """What follows `darkarchive crawl <source>` (the page budget is added per run)."""
        mirrors = [arg for url in self.mirror for arg in ("--mirror", url)]
        return [*mirrors, *self.args]


class BackoffConfig(_Strict):
    factor: float = Field(default=1.5, ge=1.0)
    cap: Seconds = Field(default=86400.0, gt=0)

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.factor, self.cap)


class Schedules(_Strict):
    """The whole schedule file."""

    max_concurrent: int = Field(default=2, ge=1)
    backoff: BackoffConfig = BackoffConfig()
    sources: dict[str, SourceSchedule] = {}

    @field_validator("sources")
    @classmethod
    def _source_ids(cls, value: dict[str, SourceSchedule]) -> dict[str, SourceSchedule]:
        for source in value:
            if not source or ":" in source or source.startswith("-"):
                raise ValueError(f"{source!r} is not a source id")
        return value


class ScheduleConfigError(ConfigFileError):
    """A schedule file that cannot be used, with where and why."""

    what = "schedule file"


def schedules_path() -> Path:
    """`DARKARCHIVE_SCHEDULES`, else the repo's config/schedules.yaml."""
    return Path(os.environ.get("DARKARCHIVE_SCHEDULES") or DEFAULT_SCHEDULES)


def load_schedules(path: Path | None = None) -> Schedules:
    """Read and validate a schedule file; a problem names the file, the key and the fix."""
    path = path or schedules_path()
    return load_model(path, Schedules, ScheduleConfigError, "no such schedule file")
