"""Exit codes of `darkarchive crawl`: what a scheduler (cron, systemd, ours) acts on."""

from __future__ import annotations

COMPLETE = 0
FAILED = 1  # the run failed: template drift, Tor unavailable, nothing parsed…
CONFIG_ERROR = 2  # a bad source, schedule or alert file, or bad arguments
DATABASE_UNREACHABLE = 3  # at start, or lost mid-crawl (the run can be resumed)
PARTIAL = 4  # the run ended but missed pages: nothing was delisted
REFUSED = 5  # another crawl holds the source's lease, the source is paused, or a bad --resume
INTERRUPTED = 6  # SIGTERM/SIGINT: the run is `interrupted` and can be resumed

BY_STATUS = {"complete": COMPLETE, "partial": PARTIAL, "failed": FAILED, "interrupted": INTERRUPTED}
