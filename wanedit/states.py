"""Job statuses and the transitions allowed between them. Pure."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"  # recorded and enqueued; no provider task yet
    SUBMITTED = "submitted"  # the provider task exists (PENDING there)
    RUNNING = "running"  # the provider is working on it, or its results are being copied
    SUCCEEDED = "succeeded"  # at least one image is stored
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED})

ALLOWED: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.SUBMITTED, Status.FAILED, Status.CANCELED}),
    Status.SUBMITTED: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELED}),
    Status.RUNNING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
}


def can_move(current: Status, target: Status) -> bool:
    return target in ALLOWED[current]


def sources_for(target: Status) -> frozenset[Status]:
    """Every status a job may move to `target` from."""
    return frozenset(status for status, targets in ALLOWED.items() if target in targets)


EVENT_TYPES = {
    Status.SUCCEEDED: "job.succeeded",
    Status.FAILED: "job.failed",
    Status.CANCELED: "job.canceled",
}
