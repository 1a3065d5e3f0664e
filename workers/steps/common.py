"""What every step shares: load a job, count a message's deliveries, fail, give a slot back."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from wanedit.accounts import Account
from wanedit.errors import JobNotFound, TransientProviderError
from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed_so_far
from wanedit.workers.policy.poll import deadline_of
from wanedit.workers.steps.admit import QUERY_WAIT_MIN, admit_free_slots
from wanedit.workers.steps.deliver import notify

log = logging.getLogger("wanedit.workers")
ACTIVE = (Status.SUBMITTED, Status.RUNNING)
# A list walk's further pages wait for their query turn in-process, up to this long.
PACE_MAX = 2.0


@dataclass(frozen=True)
class RetryLater:
    """Run this step's message again after `countdown` seconds (with other `args` if given)."""

    countdown: float
    args: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Delivery:
    """The message a step runs in: its task name, id and retries so far. A step run in-process
    by another step has no message id: the step that runs it did the counting."""

    task: str
    message_id: str | None = None
    retries: int = 0


def load(ctx: WorkerContext, job_id: str) -> Job | None:
    try:
        return ctx.store.get(job_id)
    except JobNotFound:
        log.warning("job %s: no record (expired or never created); dropping the message", job_id)
        return None


def account_of(ctx: WorkerContext, job: Job) -> Account:
    return ctx.settings.account(job.account or ctx.settings.accounts[0].name)


def owned_key(ctx: WorkerContext, account: str) -> str:
    """Provider task id -> job id, for every task our creates made on `account`."""
    return ctx.store.keys.provider_tasks(account)


def seen_key(ctx: WorkerContext, account: str) -> str:
    """Provider task id -> when the list watch last saw it (unix seconds)."""
    return ctx.store.keys.watch_seen(account)


def seen_at(ctx: WorkerContext, account: str, job: Job) -> float | None:
    """When the list watch last saw this job's task (None: not seen, or unreadable)."""
    raw: Any = ctx.redis.hget(seen_key(ctx, account), job.provider_task_id or "")
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None


def rewatch(ctx: WorkerContext, account: str, delay: float, *, reserved: bool = False) -> None:
    """Book the account's next look; only one watch chain per account runs."""
    if ctx.admission.book(f"watch:{account}", delay):
        send.watch(account, reserved=reserved, countdown=delay)


def lost_too_often(ctx: WorkerContext, job: Job, delivery: Delivery) -> bool:
    """Count this message's deliveries; a message redelivered because its worker died, more
    than `max_losses` times, ends the job instead of killing workers forever. A step started
    after the sweeper sent one again is noted on the job: the job is moving (see the sweeper)."""
    if job.redrive_at is not None and (job.stepped_at or 0.0) < job.redrive_at:
        try:
            ctx.store.update(job, {"stepped_at": ctx.clock()}, while_in=None)
        except JobNotFound:
            return False  # gone meanwhile: the sweeper reports it
    if not delivery.message_id:
        return False  # run in-process by another step, which did its own counting
    # A retry keeps the message id with one more retry; a redelivery repeats both.
    key = ctx.store.keys.deliveries(delivery.message_id, delivery.retries)
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 86400)
        deliveries = int(pipe.execute()[0])
    if deliveries <= ctx.settings.max_losses:
        return False
    message = f"the worker running {delivery.task} was lost {deliveries - 1} times"
    fail(ctx, job, "WorkerLost", message, billed=billed_so_far(job))
    return True


def ended(ctx: WorkerContext, job: Job, billed: int | None) -> None:
    """When the provider task has ended: give its slot back and let the next job in. Safe to
    call again (only the first release counts)."""
    if job.account and job.provider_task_id:
        ctx.redis.hdel(seen_key(ctx, job.account), job.provider_task_id)
    if job.account and ctx.admission.release(job.id, job.account, billed):
        # The slot idles until the next create: send it from here rather than by messages.
        admit_free_slots(ctx, inline=True)


def fail(
    ctx: WorkerContext,
    job: Job,
    code: str,
    message: str,
    extra: dict[str, Any] | None = None,
    *,
    billed: int | None,
) -> None:
    changes = {"error": {"code": code, "message": message}, **(extra or {})}
    if ctx.store.transition(job, Status.FAILED, changes):
        log.error("job %s: failed: %s: %s", job.id, code, message)
        notify(ctx, job)
    ended(ctx, job, billed)


def retry_or_fail(
    ctx: WorkerContext,
    job: Job,
    exc: Exception,
    delivery: Delivery,
    *,
    throttled: bool,
    args: tuple[Any, ...] | None = None,
) -> RetryLater | None:
    """Retry the step with backoff (with other `args` if given); give up after the retry budget
    (throttling: the deadline)."""
    attempt = delivery.retries
    now = ctx.clock()
    past_deadline = now >= deadline_of(job, ctx.settings.poll_deadline, now=now)
    policy = ctx.retry_policy
    if past_deadline or (
        not throttled and policy.spent(attempt, getattr(exc, "max_retries", None))
    ):
        code = getattr(exc, "code", "StorageUnavailable")
        message = f"gave up after {attempt + 1} attempts: {exc}"
        fail(ctx, job, code, message, billed=billed_so_far(job))
        return None
    delay = policy.delay(attempt, ctx.rand)
    log.info("job %s: %s, retry %d in %.1fs", job.id, exc, attempt + 1, delay)
    return RetryLater(delay, args)


def report_lost(ctx: WorkerContext, job_id: str, noticed_by: str) -> None:
    """A job's record is gone while the job had not ended (evicted, or deleted by hand): end it
    with a `job.failed` event that says so. Only the first report of a job writes anything."""
    message = (
        f"the job's record was gone from Redis before the job ended (noticed by {noticed_by}); "
        "its request and progress are lost"
    )
    if ctx.store.record_lost(job_id, "JobRecordLost", message):
        log.error("job %s: failed: JobRecordLost: %s", job_id, message)


def reconcile_later(ctx: WorkerContext, job: Job, delay: float) -> None:
    """Look at the task list for what a create whose answer is unknown made."""
    ctx.store.set_due(job.id, ctx.clock() + delay)
    send.reconcile(job.id, countdown=delay)


def pace(ctx: WorkerContext, account: Account) -> None:
    """Wait for the account's next query turn: the further pages of a list walk, a cancel."""
    wait = ctx.admission.reserve_query(account)
    if wait > PACE_MAX:
        raise TransientProviderError(
            "QueryBudgetBusy", f"the account's next query turn is {wait:.1f} s away"
        )
    if wait > QUERY_WAIT_MIN:
        time.sleep(wait)
