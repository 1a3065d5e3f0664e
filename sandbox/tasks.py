"""The task store and its lazy scheduling simulation.

No thread runs the tasks. Each main account has ``concurrency`` slots and a strict FIFO queue; on
every request the simulation is advanced to ``now``: a PENDING task starts at the instant a
slot frees (the end of the task that held it, or its own submit time when a slot was free)
and ends ``duration`` seconds later. Replaying the same submits and cancels at the same times
therefore gives the same schedule, and tests can move a fake clock instead of sleeping.

The store is not thread-safe on its own: the service calls it under one lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from wanedit.sandbox.faults import Outcome
from wanedit.sandbox.images import InputImage
from wanedit.sandbox.params import EditRequest

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELED = "CANCELED"
UNKNOWN = "UNKNOWN"
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED)


@dataclass(eq=False)
class Task:
    """One image-edit task of one main account (``account``), made with ``api_key``.

    ``request_id`` is the request id of the create call that made it, which the task list shows.
    """

    task_id: str
    account: str
    submit_at: float
    duration: float
    request: EditRequest
    size: tuple[int, int]
    seed: int
    inputs: tuple[InputImage, ...] = ()
    outcome: Outcome = field(default_factory=Outcome)
    start_at: float | None = None
    canceled_at: float | None = None
    api_key: str = ""
    request_id: str = ""

    @property
    def end_at(self) -> float | None:
        return None if self.start_at is None else self.start_at + self.duration

    def status(self, now: float) -> str:
        """The status at ``now``, for a store already advanced to ``now``."""
        if self.canceled_at is not None:
            return CANCELED
        if self.start_at is None or self.start_at > now:
            return PENDING
        if now < self.start_at + self.duration:
            return RUNNING
        return FAILED if self.outcome.failure else SUCCEEDED


@dataclass
class _Account:
    pending: deque[Task] = field(default_factory=deque)
    running: list[Task] = field(default_factory=list)
    max_running: int = 0


class TaskStore:
    """Tasks by id, each account's queue, and the simulation that moves them.

    ``on_start`` is called with each task the moment the simulation starts it, when its end
    becomes known (the task-end events are scheduled from it).
    """

    def __init__(
        self, concurrency: int, ttl: float, on_start: Callable[[Task], None] | None = None
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.ttl = ttl
        self._on_start = on_start
        self._tasks: dict[str, Task] = {}
        self._accounts: dict[str, _Account] = {}

    def add(self, task: Task) -> None:
        """Queue a new task at its submit time (which must not precede earlier submits)."""
        self._tasks[task.task_id] = task
        account = self._accounts.setdefault(task.account, _Account())
        account.pending.append(task)
        self._advance_account(account, task.submit_at)

    def advance(self, now: float) -> None:
        """Run every account's simulation up to ``now`` and forget tasks past their TTL."""
        for account in self._accounts.values():
            self._advance_account(account, now)
        self._purge(now)

    def get(self, task_id: str, account: str, now: float) -> Task | None:
        """The task as ``account`` may see it; None when unknown, foreign or expired."""
        task = self._tasks.get(task_id)
        if task is None or task.account != account or self._expired(task, now):
            return None
        return task

    def cancel(self, task_id: str, account: str, now: float) -> bool:
        """Cancel a task of ``account`` that is still PENDING at ``now``."""
        task = self.get(task_id, account, now)
        if task is None or task.status(now) != PENDING:
            return False
        task.canceled_at = now
        self._accounts[account].pending.remove(task)
        return True

    def of_account(self, account: str, now: float) -> list[Task]:
        """The account's visible tasks, newest first."""
        visible = [t for t in self._tasks.values() if t.account == account]
        return [t for t in reversed(visible) if not self._expired(t, now)]

    def listed(self, account: str, now: float) -> list[Task]:
        """The account's tasks within their 24 hours, newest first, ``[sandbox:expire]`` ones
        included (the list shows them as UNKNOWN)."""
        mine = [t for t in self._tasks.values() if t.account == account]
        return [t for t in reversed(mine) if now - t.submit_at <= self.ttl]

    def counts(self, now: float) -> dict[str, int]:
        """How many stored tasks are in each status."""
        counts = dict.fromkeys(STATUSES, 0)
        for task in self._tasks.values():
            counts[task.status(now)] += 1
        return counts

    def max_running(self) -> dict[str, int]:
        """The most tasks each account ever had RUNNING at one instant."""
        return {name: acc.max_running for name, acc in self._accounts.items()}

    def reset_max_running(self, now: float) -> None:
        """Restart the peak counts from the tasks RUNNING at ``now``."""
        for account in self._accounts.values():
            account.max_running = sum(1 for t in account.running if t.status(now) == RUNNING)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def _advance_account(self, account: _Account, now: float) -> None:
        running = account.running
        while account.pending:
            head = account.pending[0]
            # Slots freed before the head arrived were free when it was submitted.
            running[:] = [t for t in running if _end(t) > head.submit_at]
            if len(running) < self.concurrency:
                start = head.submit_at
            else:
                first = min(running, key=_end)
                if _end(first) > now:
                    break
                running.remove(first)
                start = _end(first)
            account.pending.popleft()
            head.start_at = start
            running.append(head)
            busy = sum(1 for t in running if _end(t) > start or t is head)
            account.max_running = max(account.max_running, busy)
            if self._on_start is not None:
                self._on_start(head)
        running[:] = [t for t in running if _end(t) > now]

    def _expired(self, task: Task, now: float) -> bool:
        return task.outcome.expired or now - task.submit_at > self.ttl

    def _purge(self, now: float) -> None:
        # Tasks are kept in submit order, so the expired ones are at the front. A finished
        # task stays until its result URLs (valid ttl seconds after its end) expire too.
        while self._tasks:
            oldest = next(iter(self._tasks.values()))
            if now - oldest.submit_at <= self.ttl:
                break
            end = oldest.end_at
            if end is not None and oldest.canceled_at is None and now - end <= self.ttl:
                break
            del self._tasks[oldest.task_id]

    def find(self, task_id: str) -> Task | None:
        """A stored task whatever its account or age (for result downloads)."""
        return self._tasks.get(task_id)


def _end(task: Task) -> float:
    assert task.start_at is not None
    return task.start_at + task.duration
