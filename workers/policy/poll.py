"""What a poll does next, decided from the job and the provider's answer. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wanedit.states import Status
from wanedit.workers.policy.schedule import PollPolicy
from wanedit.workers.provider import TaskState

if TYPE_CHECKING:
    from wanedit.store.record import Job


@dataclass(frozen=True)
class PollAgain:
    """Still PENDING or RUNNING: look again after `delay` seconds."""

    delay: float
    mark_running: bool


@dataclass(frozen=True)
class Finish:
    """SUCCEEDED: copy the results into storage."""


@dataclass(frozen=True)
class Fail:
    """End the job as failed with this code and message."""

    code: str
    message: str


@dataclass(frozen=True)
class Canceled:
    """The provider canceled the task."""


Step = PollAgain | Finish | Fail | Canceled


def deadline_of(job: Job, poll_deadline: float, *, now: float) -> float:
    """When a job stops being tried: `poll_deadline` after its provider task was made or, before
    that, after its first create. Never counted from when it was enqueued: the time a job waits
    in the backlog is not spent on it (the create about to be sent, `now`, starts the clock)."""
    started = job.timestamps.get(Status.SUBMITTED.value)
    if started is None:
        started = now if job.first_create_at is None else job.first_create_at
    return started + poll_deadline


def next_step(job: Job, task: TaskState, now: float, policy: PollPolicy, deadline: float) -> Step:
    """The one decision a poll makes."""
    if task.status == "SUCCEEDED":
        return Finish()
    if task.status == "FAILED":
        return Fail(task.code or "Unknown", task.message or "the provider reported FAILED")
    if task.status == "CANCELED":
        return Canceled()
    if task.status == "UNKNOWN":
        return Fail(
            "TaskUnknown",
            "the provider does not know this task: its id is wrong or its 24 h window has passed",
        )
    if now >= deadline:
        return Fail(
            "PollDeadlineExceeded",
            f"the provider task was still {task.status} at the poll deadline",
        )
    delay = min(policy.delay(job.polls + 1), max(deadline - now, 0.0))
    return PollAgain(delay=delay, mark_running=task.status == "RUNNING")
