"""What `wanedit cancel` tells the user: the outcome of a cancel, from the job before the
request and as it stands after it. Pure: a table of cases, tested as one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wanedit.producers.cli.exits import (
    EXIT_ENDED,
    EXIT_NOT_ENDED,
    EXIT_OK,
    EXIT_TOO_LATE,
)

ENDED = ("succeeded", "failed", "canceled")
TOO_LATE = "too late: the provider has started it; its result will be delivered and billed"


@dataclass(frozen=True)
class CancelOutcome:
    """One outcome: its name (`--json` shows it as `cancel_outcome`), its line and exit status."""

    name: str
    line: str
    code: int


def cancel_outcome(before: dict[str, Any], after: dict[str, Any]) -> CancelOutcome:
    """`before`: the job as read before the request; `after`: as it stands once the request
    settled (or the wait for it ended)."""
    if before["status"] in ENDED:
        return CancelOutcome(
            "already_ended",
            f"already {before['status']}: the job had ended; nothing changed",
            EXIT_ENDED,
        )
    status = after["status"]
    if status == "canceled":
        where = "at the provider" if after.get("provider_task_id") else "before it was sent"
        return CancelOutcome("canceled", f"canceled {where}; nothing is billed", EXIT_OK)
    if after.get("cancel_refused") or status == "running":
        # Our record says RUNNING only once the provider did: it cannot cancel a started task.
        return CancelOutcome("too_late", TOO_LATE, EXIT_TOO_LATE)
    if status in ENDED:
        return CancelOutcome(
            "too_late",
            f"too late: the job ended {status} before the cancel reached the provider",
            EXIT_TOO_LATE,
        )
    if status == "queued":
        detail = (
            "a create is in flight; once the provider answers, its task is canceled if it has "
            "not started"
        )
    else:
        detail = "the provider has not answered yet; the task is canceled if it has not started"
    return CancelOutcome(
        "requested",
        f"cancel requested: {detail} (see `wanedit status {after['id']}`)",
        EXIT_NOT_ENDED,
    )


def settled(job: dict[str, Any]) -> bool:
    """Whether a cancel's outcome is known: the job ended, the cancel was refused, or the
    provider has started the task."""
    return job["status"] in ENDED or bool(job.get("cancel_refused")) or job["status"] == "running"
