"""What a `darkarchive crawl` exit code means for the schedule."""

from __future__ import annotations

import signal

from crawler import exit_codes

# The exit-code contract of `darkarchive crawl` (crawler/exit_codes.py), as the schedule reads it.
EXIT_MEANINGS = {
    exit_codes.COMPLETE: "complete",
    exit_codes.FAILED: "failed",
    exit_codes.CONFIG_ERROR: "configuration error",
    exit_codes.DATABASE_UNREACHABLE: "database unreachable",
    exit_codes.PARTIAL: "partial",
    exit_codes.REFUSED: "refused",  # another process holds the source's lease, or it is paused
    exit_codes.INTERRUPTED: "interrupted",
}
# A partial run still counts as a run for the schedule (history notes it as partial).
SUCCESS = {exit_codes.COMPLETE, exit_codes.PARTIAL}
REFUSED = exit_codes.REFUSED


def describe_exit(code: int | None) -> str:
    """`"failed"`, `"partial"`, `"killed by SIGKILL"`…

    >>> describe_exit(3), describe_exit(-9), describe_exit(42), describe_exit(None)
    ('database unreachable', 'killed by SIGKILL', 'exit 42', 'running')
    """
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return EXIT_MEANINGS.get(code, f"exit {code}")


def outcome(code: int) -> str:
    """How the schedule counts an exit: `success`, `refused` or `failure`.

    >>> [outcome(c) for c in (0, 4, 5, 1, 6, -15)]
    ['success', 'success', 'refused', 'failure', 'failure', 'failure']
    """
    if code in SUCCESS:
        return "success"
    if code == REFUSED:
        return "refused"
    return "failure"
