"""Sending the next step: the one place that puts wanedit's own task messages on the queue.

Steps never call each other's tasks: they send a message by task name, with the same positional
arguments producers, beat and older workers send, and a countdown when the step is not due yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery.exceptions import Retry

from wanedit.config.celery import (
    ADMIT_TASK,
    BATCH_CHUNK_TASK,
    CANCEL_TASK,
    DELIVER_TASK,
    FINISH_TASK,
    POLL_TASK,
    RECONCILE_TASK,
    SUBMIT_TASK,
    WATCH_TASK,
)
from wanedit.workers.celery_app import app


def _send(name: str, args: tuple[Any, ...], countdown: float | None = None, **options: Any) -> None:
    app.send_task(name, args=args, countdown=countdown, **options)


def admit() -> None:
    """Admission looks at the backlog now."""
    _send(ADMIT_TASK, ())


def admit_tick(countdown: float) -> None:
    """The follow-up admission while jobs wait (one tick chain at a time: the caller booked it)."""
    _send(ADMIT_TASK, (True,), countdown)


def submit(
    job_id: str,
    account: str,
    token: int | None,
    *,
    countdown: float | None = None,
    retries: int | None = None,
) -> None:
    """Create the provider task of an admitted job; `token` is its admission's (a message from
    an earlier admission is refused); `retries` counts a retry made in-process."""
    options = {} if retries is None else {"retries": retries}
    args = (job_id, account) if token is None else (job_id, account, token)
    _send(SUBMIT_TASK, args, countdown, **options)


def create_here(
    job_id: str, account: str, token: int | None, *, retry_in: Callable[[], float]
) -> None:
    """The submit task run in this process, for admission's creates that are due now (a message
    would only add its round trip). A create to be retried goes on as a message, after
    `retry_in()` seconds, counted as its first retry."""
    try:
        app.tasks[SUBMIT_TASK].run(job_id, account, token)
    except Retry:
        submit(job_id, account, token, countdown=retry_in(), retries=1)


def reconcile(job_id: str, *, reserved: bool = False, countdown: float | None = None) -> None:
    """Look at the task list for what a create whose answer was lost made."""
    _send(RECONCILE_TASK, (job_id, True) if reserved else (job_id,), countdown)


def poll(job_id: str, *, countdown: float | None = None) -> None:
    """The next poll of the task's own chain."""
    _send(POLL_TASK, (job_id,), countdown)


def poll_once(job_id: str) -> None:
    """A one-off look now, on the account's next query turn (its chain goes on as booked)."""
    _send(POLL_TASK, (job_id, False, False))


def poll_reserved(job_id: str, *, chain: bool, countdown: float | None = None) -> None:
    """A poll whose query turn is booked already; `chain` False for a one-off look."""
    _send(POLL_TASK, (job_id, True, chain), countdown)


def finish(job_id: str) -> None:
    """Copy the results of a task that succeeded into storage."""
    _send(FINISH_TASK, (job_id,))


def cancel(job_id: str) -> None:
    """Cancel the job: a cancel asked for while its create was in flight, now it is recorded."""
    _send(CANCEL_TASK, (job_id,))


def cancel_reserved(job_id: str, *, countdown: float) -> None:
    """The provider cancel, once its query turn comes."""
    _send(CANCEL_TASK, (job_id, True), countdown)


def watch(account: str, *, reserved: bool, countdown: float) -> None:
    """The account's next list look (the caller booked the one chain)."""
    _send(WATCH_TASK, (account, True, reserved), max(countdown, 0.0))


def deliver(job_id: str, attempt: int, *, countdown: float | None = None) -> None:
    """Pay an ended job's callbacks; `attempt` webhook attempts were made before."""
    _send(DELIVER_TASK, (job_id, attempt), countdown)


def on_complete(task: str, event: dict[str, Any], queue: str) -> None:
    """The caller's own completion task, by name on its queue, with the job's event."""
    app.send_task(task, args=[event], queue=queue)


def batch_chunk(batch_id: str, token: str) -> None:
    """The next chunk of a scheduled batch, run by the holder of its lock."""
    _send(BATCH_CHUNK_TASK, (batch_id, token))
