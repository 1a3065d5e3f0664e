"""What to do about a create whose answer was lost. Pure: the list rows and times are passed in.

The provider has no idempotency key, so a create that timed out may or may not have made a task.
Before creating again, the account's task list around the moment the create was sent is read:
a task there that no job of ours owns is the lost one. Only when the list shows none is the edit
created again; when several unowned tasks could be it, the decision waits for more evidence.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from wanedit.workers.provider import ListedTask

# Task-list looks in a row that must show no task before a lost create is sent again.
EMPTY_LOOKS = 2


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


def window(
    sent_at: float, now: float, skew: float, settle: float | None = None
) -> tuple[float, float]:
    """The submit times a task made by a create sent at `sent_at` can carry: from the send to
    now, or to `settle` after the send (a create that took effect later than that would be
    made twice anyway: the edit is created again after it), widened by the clock skew."""
    high = now if settle is None else min(now, sent_at + settle)
    return sent_at - skew, high + skew


def look_wait(sent_at: float, lost_at: float | None, now: float, *, settle: float) -> float:
    """Seconds until the task list may be read for a create sent at `sent_at`. Once its worker
    saw the answer lost (`lost_at`), at once. Otherwise the worker may be alive and its answer
    still on the way (a second submit message for the job, a sweep): only `settle` after the
    send, when the answer surely came or never will; a look before could adopt the task its
    own worker is about to record, or find none and create it again."""
    if lost_at is not None:
        return 0.0
    return max(0.0, sent_at + settle - now)


def tries_after(tries: int, sent_at: float, now: float, *, settle: float) -> int:
    """The undecided looks that count toward giving up, after one more. Only looks made after
    the settle time count: before it, a peer's create may still be answered or sent again, so
    candidates that no job has taken yet are expected, and a busy account could otherwise spend
    every look before the evidence can be complete."""
    return tries + 1 if now >= sent_at + settle else tries


def evidence_from(sent_at: float, unsure: Sequence[float], *, skew: float, settle: float) -> float:
    """The send from which an undecided look's evidence is complete: the latest send among this
    create and the other unsure creates whose tasks could fall in its window. Until that send's
    settle time a peer may still be answered, adopt its task or be sent again, and so decide this
    one: two unsure creates and one candidate is expected while either may still settle."""
    low, high = window(sent_at, sent_at + settle, skew, settle)
    return max([sent_at, *(sent for sent in unsure if low <= sent <= high)])


def give_up(tries: int, max_tries: int, sent_at: float, now: float, settle: float) -> bool:
    """Whether a reconcile that could not decide ends its job (CreateOutcomeUnknown): only
    after `max_tries` looks, and never before the settle time has passed, since until then
    a peer's create may still take effect, or a peer that made nothing may still be sent
    again, and either may decide this one."""
    return tries >= max_tries and now >= sent_at + settle


def decide(
    listed: Sequence[ListedTask],
    owned: Collection[str],
    sent_at: float,
    now: float,
    skew: float,
    unsure: Sequence[float] = (),
    *,
    request_id: str | None = None,
    claimed: Collection[str] = (),
    key_ids: Collection[str] = (),
    settle: float | None = None,
) -> Decision:
    """Adopt the unowned task in the window, recreate if there is none, else wait.

    `owned` are the provider task ids our jobs have recorded. `request_id` is the id an error
    answer to this job's create carried: the row that carries it is this job's task for certain.
    Otherwise rows are matched by submit time: `unsure` are the send
    times of the other jobs on the account whose create outcome is unknown and unmatched by a
    request id. With as many candidates as unsure jobs, each job takes the candidate of its
    rank: creates on one account are sent at least 1/R apart and the provider stamps them in
    arrival order. Any other count (a foreign task in the window, or a create that made
    nothing) waits for more evidence. Rows whose request id another unsure job holds, and rows
    made with another key than the one our own tasks show (`key_ids`), are never candidates.
    """
    exact = [task for task in listed if request_id and task.request_id == request_id]
    if exact:
        if exact[0].task_id in owned:
            return Wait((exact[0].task_id,))
        return Adopt(exact[0].task_id)
    # No row carries it: the id may have been a gateway's own, so the rows are matched by time
    # as if there were none (a wrong "no task" would pay twice).
    low, high = window(sent_at, now, skew, settle)
    unowned = [
        task
        for task in listed
        if task.task_id not in owned
        and not (task.request_id and task.request_id in claimed)
        and (task.submitted is None or low <= task.submitted <= high)
    ]
    candidates = sorted(
        (t for t in unowned if not (key_ids and t.api_key_id and t.api_key_id not in key_ids)),
        key=lambda task: (task.submitted is None, task.submitted or 0.0, task.task_id),
    )
    if not candidates:
        # A row set aside only for its key may still be ours (a rotated key): never recreate.
        return Wait(tuple(t.task_id for t in unowned)) if unowned else Recreate()
    peers = sorted(set(unsure) | {sent_at})
    if len(candidates) == len(peers):
        return Adopt(candidates[peers.index(sent_at)].task_id)
    return Wait(tuple(task.task_id for task in candidates))


def wait_before_recreate(
    empty_looks: int, sent_at: float, now: float, *, settle: float, look_delay: float
) -> float | None:
    """Seconds until the next look when a look found no task; None when the create may go again.

    One empty list is no proof: the provider may list a task a moment after making it, and a
    create our client gave up on may still reach it (held in a proxy, a gateway or a busy
    server's queue). Only the `EMPTY_LOOKS`-th empty look in a row (`empty_looks` counts this
    one), made at least `settle` after the send, lets it go again (a look that failed is not an
    empty one)."""
    settled = sent_at + settle
    if empty_looks < EMPTY_LOOKS or now < settled:
        return max(look_delay, settled - now)
    return None
