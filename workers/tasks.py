"""The Celery tasks: each a thin shell over one step of `wanedit.workers.steps`.

A task gets the worker context, runs its step, and turns a step's `RetryLater` into a Celery
retry. Task names and arguments are the contract with producers, beat and other deployments.
Every step may run twice: transitions are compare-and-set, keys are deterministic, and the
event is written by the same atomic step as the terminal status. No task sleeps.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.signals import worker_ready

from wanedit.config.celery import (
    ADMIT_TASK,
    CANCEL_TASK,
    DELIVER_TASK,
    FINISH_TASK,
    POLL_TASK,
    RECONCILE_TASK,
    SUBMIT_TASK,
    SWEEP_TASK,
    WATCH_TASK,
)
from wanedit.workers import next as send
from wanedit.workers.celery_app import app
from wanedit.workers.context import get_context
from wanedit.workers.steps import admit as admit_step
from wanedit.workers.steps import cancel as cancel_step
from wanedit.workers.steps import deliver as deliver_step
from wanedit.workers.steps import finish as finish_step
from wanedit.workers.steps import poll as poll_step
from wanedit.workers.steps import reconcile as reconcile_step
from wanedit.workers.steps import submit as submit_step
from wanedit.workers.steps import sweep as sweep_step
from wanedit.workers.steps import watch as watch_step
from wanedit.workers.steps.common import Delivery, RetryLater


def _delivery(task: Task) -> Delivery:
    """Which message runs the step (none when the task is run in-process)."""
    request = task.request
    message_id = None if request.called_directly else request.id
    return Delivery(task.name, message_id, request.retries or 0)


def _retry_if(task: Task, later: RetryLater | None) -> None:
    if later is not None:
        raise task.retry(args=later.args, countdown=later.countdown, max_retries=None, exc=None)


@app.task(name=ADMIT_TASK)
def admit(tick: bool = False) -> None:
    """Hand free provider slots to waiting jobs, best first, each at its rate-limited moment."""
    admit_step.admit(get_context(), tick=tick)


@worker_ready.connect
def _start_admission(**_: Any) -> None:
    """Jobs may already wait in the backlog: look at once rather than at the next nudge."""
    send.admit()


@app.task(name=SUBMIT_TASK, bind=True, max_retries=None)
def submit(self: Task, job_id: str, account_name: str, token: int | None = None) -> None:
    """Create the provider task for an admitted job, record its id, then schedule the first poll.
    `token` names the admission the message was sent for (absent in older messages)."""
    ctx = get_context()
    _retry_if(self, submit_step.submit(ctx, job_id, account_name, _delivery(self), token))


@app.task(name=RECONCILE_TASK, bind=True, max_retries=None)
def reconcile(self: Task, job_id: str, reserved: bool = False) -> None:
    """Find out whether a create whose answer was lost made a task: adopt it, or create again
    only when the provider's task list shows none."""
    reconcile_step.reconcile(get_context(), job_id, reserved, _delivery(self))


@app.task(name=SWEEP_TASK)
def sweep() -> int:
    """Re-drive jobs whose next step is overdue; run by beat. Returns how many it re-drove."""
    return sweep_step.sweep(get_context())


@app.task(name=WATCH_TASK)
def watch(account_name: str, tick: bool = False, reserved: bool = False) -> None:
    """One list call for all of an account's tasks in flight; a task that has ended gets its
    poll at once."""
    watch_step.watch(get_context(), account_name, tick=tick, reserved=reserved)


@app.task(name=POLL_TASK, bind=True, max_retries=None)
def poll(self: Task, job_id: str, reserved: bool = False, chain: bool = True) -> None:
    """Query the provider task once, within the account's query rate, and act on the answer."""
    ctx = get_context()
    poll_step.poll(ctx, job_id, reserved=reserved, chain=chain, delivery=_delivery(self))


@app.task(name=FINISH_TASK, bind=True, max_retries=None)
def finish(self: Task, job_id: str) -> None:
    """Stream every result image into S3, then end the job with exactly one event."""
    _retry_if(self, finish_step.finish(get_context(), job_id, _delivery(self)))


@app.task(name=CANCEL_TASK, bind=True, max_retries=None)
def cancel(self: Task, job_id: str, reserved: bool = False) -> None:
    """Cancel at the provider: possible only while its task is PENDING."""
    _retry_if(self, cancel_step.cancel(get_context(), job_id, reserved, _delivery(self)))


@app.task(name=DELIVER_TASK)
def deliver(job_id: str, attempt: int = 0) -> None:
    """Send an ended job's event to its callbacks; `attempt` is the number of webhook attempts
    made before this one."""
    deliver_step.deliver(get_context(), job_id, attempt)
