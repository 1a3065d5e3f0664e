"""`wanedit submit --wait`: one line on stderr for each status a job enters, with the seconds
since it was queued, read from the job record's own status times (so a status passed between
two looks is shown too, at the moment it was entered)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

ORDER = ("queued", "submitted", "running", "succeeded", "failed", "canceled")


def new_changes(timestamps: dict[str, str | None], shown: list[str]) -> list[tuple[str, float]]:
    """The statuses entered that are not in `shown` yet, in the order they were entered, each
    with its seconds since the job was queued."""
    times = {
        name: datetime.fromisoformat(value).timestamp()
        for name, value in timestamps.items()
        if value and name in ORDER
    }
    start = times.get("queued", min(times.values(), default=0.0))
    entered = sorted(times.items(), key=lambda item: (item[1], ORDER.index(item[0])))
    return [(name, at - start) for name, at in entered if name not in shown]


def change_line(previous: str | None, status: str, elapsed: float) -> str:
    if previous is None:
        return f"[{elapsed:6.1f} s] {status}"
    return f"[{elapsed:6.1f} s] {previous} -> {status}"


def wait_showing(
    job_id: str,
    timeout: float | None,
    read: Callable[[str], dict[str, Any]],
    show: Callable[[str], None],
    *,
    interval: float = 0.25,
) -> dict[str, Any]:
    """Look at the job until it ends (or `timeout` seconds pass), showing each change once;
    returns the job as it stands."""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown: list[str] = []
    while True:
        job = read(job_id)
        for status, elapsed in new_changes(job.get("timestamps") or {}, shown):
            show(change_line(shown[-1] if shown else None, status, elapsed))
            shown.append(status)
        if job["status"] in ORDER[3:]:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            return job
        time.sleep(interval)
