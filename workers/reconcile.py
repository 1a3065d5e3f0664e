"""What to do about a create whose answer was lost. Pure: the list rows and times are passed in.

The provider has no idempotency key, so a create that timed out may or may not have made a task.
Before creating again, the account's task list around the moment the create was sent is read:
a task there that no job of ours owns is the lost one. Only when the list shows none is the edit
created again; when several unowned tasks could be it, the decision waits for more evidence.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from workers.provider import ListedTask


@dataclass(frozen=True)
class Adopt:
    """The lost create made this task: record it and poll it."""

    task_id: str


@dataclass(frozen=True)
class Recreate:
    """No task was made: creating now cannot pay twice."""


@dataclass(frozen=True)
class Wait:
    """Not decidable yet (several candidates); look again later."""

    candidates: tuple[str, ...]


Decision = Adopt | Recreate | Wait


def window(sent_at: float, now: float, skew: float) -> tuple[float, float]:
    """The submit times a task made by a create sent at `sent_at` can carry."""
    return sent_at - skew, now + skew


def decide(
    listed: Sequence[ListedTask],
    owned: Collection[str],
    sent_at: float,
    now: float,
    skew: float,
    unsure: Sequence[float] = (),
) -> Decision:
    """Adopt the unowned task in the window, recreate if there is none, else wait.

    `owned` are the provider task ids our jobs have recorded. `unsure` are the send times of
    every job on the account whose create outcome is unknown, this one included. With as many
    candidates as unsure jobs, each job takes the candidate of its rank: creates on one account
    are sent at least 1/R apart and the provider stamps them in arrival order. Any other count
    (a foreign task in the window, or a create that made nothing) waits for more evidence.
    """
    low, high = window(sent_at, now, skew)
    candidates = sorted(
        (task for task in listed if task.task_id not in owned),
        key=lambda task: (task.submitted is None, task.submitted or 0.0, task.task_id),
    )
    candidates = [t for t in candidates if t.submitted is None or low <= t.submitted <= high]
    if not candidates:
        return Recreate()
    peers = sorted(set(unsure) | {sent_at})
    if len(candidates) == len(peers):
        return Adopt(candidates[peers.index(sent_at)].task_id)
    return Wait(tuple(task.task_id for task in candidates))
