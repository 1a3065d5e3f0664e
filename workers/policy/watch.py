"""The account's list watch and each task's own polls: who looks when. Pure.

In list mode one list call per account watches every task in flight; each task keeps a slow
poll chain of its own as a fallback. A chained poll only books its next turn while the watch
has seen its task within the poll interval; once the watch stops seeing it (a refused or
failing list, a task past the list window), the task falls back on its polls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING

from wanedit.states import Status

if TYPE_CHECKING:
    from wanedit.store.record import Job

# Provider task states in a list row that free the task's slot.
FREES_SLOT = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})


class PollTurn(Enum):
    """What a chained poll does with its turn."""

    QUERY = "query"  # ask the provider about the task
    BOOK = "book"  # the list watch is seeing the task: only book the next turn


def poll_turn(now: float, deadline: float, seen_at: float | None, every: float) -> PollTurn:
    """The turn of a task's own chained poll in list mode: it queries from its deadline on, and
    whenever the watch has not seen the task for `every` seconds (`seen_at`: when it last did)."""
    if now < deadline and seen_at is not None and now - seen_at < every:
        return PollTurn.BOOK
    return PollTurn.QUERY


def ended(due: Sequence[Job], statuses: Mapping[str, str]) -> list[Job]:
    """The due jobs whose task the list shows ended (rows of tasks not ours are ignored)."""
    return [job for job in due if statuses.get(job.provider_task_id or "") in FREES_SLOT]


def ages(jobs: Sequence[Job], now: float) -> list[float]:
    """Seconds since each job's provider task was created."""
    return [now - job.timestamps.get(Status.SUBMITTED.value, now) for job in jobs]


def look_after_error(
    *, refused: bool, watch_interval: float, retry_base: float, poll_max_interval: float
) -> float:
    """When the watch looks again after a failed list call. A refusal waits the longest poll
    interval (each task's own polls carry on meanwhile); other errors, a watch interval."""
    if refused:
        return poll_max_interval
    return max(watch_interval, retry_base)
