"""What the concurrency probe's tasks say about the provider's queue. Pure.

The probe sends C+2 tasks (C: the account's concurrency) at the allowed submit rate, then reads
the task list until all have ended. From the list rows' times (epoch milliseconds: no zone, no
poll interval in them) it tells whether the extra tasks waited PENDING or were refused, in what
order the tasks started, and how long a waiting task waited after a slot freed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A task that starts this long before the end that freed its slot still took that slot: the
# provider's times are in milliseconds and its bookkeeping takes a moment.
SLOT_SLACK = 0.5


@dataclass(frozen=True)
class ProbeTask:
    """One probe task: its place in the send order and what was seen of it."""

    index: int
    sent_at: float
    task_id: str | None = None
    refused: str | None = None  # the error code when the create was refused
    first_status: str | None = None  # its status in the first list read after the last create
    status: str | None = None  # its last status
    started: float | None = None
    ended: float | None = None


def running_at_most(tasks: list[ProbeTask]) -> int:
    """The most probe tasks running at one moment, from their start and end times."""
    edges: list[tuple[float, int]] = []
    for task in tasks:
        if task.started is None:
            continue
        edges.append((task.started, 1))
        if task.ended is not None:
            edges.append((task.ended, -1))
    most = running = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # ends before starts
        running += step
        most = max(most, running)
    return most


def slot_waits(tasks: list[ProbeTask], concurrency: int) -> list[dict[str, Any]]:
    """For each task that started after the first `concurrency` (by start time): the end that
    freed its slot (the earliest end not yet matched, at or before its start) and its wait."""
    started = sorted((t for t in tasks if t.started is not None), key=lambda t: t.started or 0.0)
    ends = sorted(t.ended for t in tasks if t.ended is not None)
    waits: list[dict[str, Any]] = []
    used = 0
    for task in started[concurrency:]:
        start = task.started or 0.0
        if used < len(ends) and ends[used] <= start + SLOT_SLACK:
            freed = ends[used]
            used += 1
            wait = round(max(start - freed, 0.0), 3)
            waits.append({"index": task.index, "slot_freed_at": freed, "wait": wait})
        else:
            # No probe task had ended: a slot was free (or another task of the account ended).
            waits.append({"index": task.index, "slot_freed_at": None, "wait": None})
    return waits


def analyse(tasks: list[ProbeTask], concurrency: int) -> dict[str, Any]:
    """The probe's findings, for the report and the one-line summary."""
    accepted = [t for t in tasks if t.task_id is not None]
    refused = [t for t in tasks if t.refused is not None]
    extra = [t for t in tasks if t.index >= concurrency]
    extra_refused = [t for t in extra if t.refused is not None]
    extra_pending = [t for t in extra if t.first_status == "PENDING"]
    start_order = [
        t.index
        for t in sorted(
            (t for t in accepted if t.started is not None), key=lambda t: t.started or 0
        )
    ]
    waits = slot_waits(accepted, concurrency)
    queued = [w["index"] for w in waits]
    most = running_at_most(accepted)
    if extra_refused:
        extra_tasks = "refused: " + ", ".join(sorted({t.refused or "" for t in extra_refused}))
    elif most > concurrency:
        extra_tasks = f"started at once: {most} ran together, more than {concurrency}"
    elif extra and len(extra_pending) == len(extra):
        extra_tasks = "accepted and left PENDING until a slot freed"
    elif extra_pending:
        extra_tasks = f"{len(extra_pending)} of {len(extra)} left PENDING"
    else:
        extra_tasks = "not seen waiting (another task may have ended first)"
    measured = [w["wait"] for w in waits if w["wait"] is not None]
    return {
        "concurrency": concurrency,
        "sent": len(tasks),
        "accepted": len(accepted),
        "refused": [{"index": t.index, "code": t.refused} for t in refused],
        "extra_tasks": extra_tasks,
        "max_running": most,
        "start_order": start_order,
        "queued_start_order": queued,
        "fifo": queued == sorted(queued) if queued else None,
        "slot_waits": waits,
        "slot_wait_max": max(measured) if measured else None,
        "statuses": {t.index: t.status for t in tasks},
    }


def summary(findings: dict[str, Any]) -> str:
    """One line: what the extra tasks did, the order, the wait."""
    parts = [f"extra tasks {findings['extra_tasks']}"]
    if findings["queued_start_order"]:
        order = "first in, first out" if findings["fifo"] else "not in send order"
        parts.append(f"queued tasks started {order} ({findings['queued_start_order']})")
    if findings["slot_wait_max"] is not None:
        parts.append(
            f"a queued task started at most {findings['slot_wait_max']:.3f} s after a slot freed"
        )
    parts.append(f"at most {findings['max_running']} ran at once")
    return "; ".join(parts)
