"""Submit: create the provider task of an admitted job and record it before any poll."""

from __future__ import annotations

import logging
from typing import Any

from wanedit.config.allow import check_job
from wanedit.errors import (
    ConfigError,
    OutcomeUnknown,
    ProviderError,
    TerminalProviderError,
    TerminalStorageError,
    TransientProviderError,
    TransientStorageError,
)
from wanedit.request import EditRequest
from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.store.scripts import Mark, Recorded
from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed_so_far
from wanedit.workers.policy.codes import is_account_error
from wanedit.workers.policy.reconcile import look_wait
from wanedit.workers.steps.admit import creating
from wanedit.workers.steps.common import (
    Delivery,
    RetryLater,
    ended,
    fail,
    load,
    lost_too_often,
    owned_key,
    pace,
    reconcile_later,
    report_lost,
    retry_or_fail,
    rewatch,
)
from wanedit.workers.steps.deliver import notify
from wanedit.workers.steps.pause import pause_account, requeue
from wanedit.workers.transfer import resolve_image

log = logging.getLogger("wanedit.workers")
CANCELED = {"code": "Canceled", "message": "canceled at the user's request"}


def submit(
    ctx: WorkerContext,
    job_id: str,
    account_name: str,
    delivery: Delivery,
    token: int | None = None,
) -> RetryLater | None:
    """Create the provider task for an admitted job, record its id, then schedule the first poll.
    `token` is the admission's the message was sent for (None: a message from before tokens)."""
    with creating():
        return _submit(ctx, job_id, account_name, delivery, token)


def _submit(
    ctx: WorkerContext, job_id: str, account_name: str, delivery: Delivery, token: int | None
) -> RetryLater | None:
    job = load(ctx, job_id)
    if job is None:
        ctx.admission.release(job_id, account_name, 0)
        report_lost(ctx, job_id, "its create")  # admitted, so it had a record
        return None
    if job.status is not Status.QUEUED:
        if job.status.terminal and job.provider_task_id is None:
            ended(ctx, job, billed_so_far(job))  # ended while admitted: the slot was never used
        return None
    if not ctx.admission.claim(job.id, account_name, token):
        log.warning(
            "job %s: its slot on %s has lapsed (or was given again); it waits for admission",
            job.id,
            account_name,
        )
        return None
    if lost_too_often(ctx, job, delivery):
        return None
    settings = ctx.settings
    if job.create_sent_at is not None:
        # A create went out before: its worker may still be waiting for the answer (this is a
        # second message for the job), or died. Look once that answer can no longer come.
        _look_later(ctx, job)
        return None
    if job.cancel_requested:
        cancel_unsent(ctx, job)
        return None
    if ctx.admission.pauses.get(account_name) is not None:
        # Admitted before the account paused: it waits for an account that serves.
        requeue(ctx, job.id, account_name, token)
        return None
    try:
        account = settings.account(account_name)
        provider = ctx.providers[account.name]
        request = EditRequest.model_validate(job.request)
        check_job(settings, request, job.output_uri)  # NotAllowed: never read, never created
        images = [
            resolve_image(source, ctx.s3, settings.image_transport, settings.presign_ttl_seconds)
            for source in request.images
        ]
    except TransientStorageError as exc:
        return retry_or_fail(ctx, job, exc, delivery, throttled=False)
    except (TerminalStorageError, ConfigError, ValueError) as exc:
        fail(ctx, job, "InputUnavailable", str(exc), billed=billed_so_far(job))
        return None
    sent_at = ctx.clock()
    mark = ctx.store.mark_create(job.id, now=sent_at, due=sent_at + settings.create_settle)
    if mark is not Mark.NOTED:
        again = load(ctx, job.id)
        if again is None or again.status is not Status.QUEUED:
            return None
        if mark is Mark.CANCEL:
            cancel_unsent(ctx, again)
        elif again.create_sent_at is not None:
            _look_later(ctx, again)
        return None
    try:
        task_id, request_id = provider.create(settings.model, request.provider_input(images))
    except OutcomeUnknown as exc:
        # It may have made a task (and will bill it): never send it again blindly.
        log.warning("job %s: create answer lost (%s); reconciling", job.id, exc)
        # The list row of a task this create made carries the error answer's request id.
        lost = {
            "provider_request_id": exc.request_id,
            "last_error": exc.as_dict(),
            "create_lost_at": ctx.clock(),
        }
        ctx.store.update(job, lost, while_in=[Status.QUEUED])
        reconcile_later(ctx, job, settings.reconcile_delay)
        return None
    except TransientProviderError as exc:
        # The provider answered with an error, or the request never left: no task was made.
        ctx.store.clear_create(job.id, sent_at)
        if exc.throttled:
            ctx.admission.pushed_back(account_name, "submit")
        again = load(ctx, job.id)
        if again is not None and again.status is Status.QUEUED and again.cancel_requested:
            cancel_unsent(ctx, again)
            return None
        return retry_or_fail(ctx, job, exc, delivery, throttled=exc.throttled)
    except TerminalProviderError as exc:
        # A refused create made no task (`job` was read before the create was marked).
        if is_account_error(exc.http_status, exc.code, exc.message):
            # The account's fault, not the job's: the job waits and the account pauses.
            ctx.store.clear_create(job.id, sent_at)
            pause_account(ctx, account_name, exc)
            requeue(ctx, job.id, account_name, token)
            return None
        fail(ctx, job, exc.code, exc.message, billed=billed_so_far(job))
        return None
    record_created(ctx, job, account.name, task_id, request_id)
    return None


def _look_later(ctx: WorkerContext, job: Job) -> None:
    sent_at = job.create_sent_at or ctx.clock()
    wait = look_wait(sent_at, job.create_lost_at, ctx.clock(), settle=ctx.settings.create_settle)
    if wait > 0:
        log.info("job %s: a create is in flight; looking at the task list in %.1fs", job.id, wait)
    reconcile_later(ctx, job, wait)


def cancel_unsent(ctx: WorkerContext, job: Job) -> None:
    """A cancel was requested and no create is in flight: end the job, never sent. The slot is
    given back only by the call whose transition won."""
    if ctx.store.transition(
        job, Status.CANCELED, {"error": CANCELED}, allowed_from=[Status.QUEUED]
    ):
        log.info("job %s: canceled before its create was sent", job.id)
        notify(ctx, job)
        ended(ctx, job, 0)


def record_created(
    ctx: WorkerContext, job: Job, account_name: str, task_id: str, request_id: str | None
) -> None:
    """The provider task exists: record it before any poll can be scheduled, on a job that has
    no task id yet; a create never replaces the task of another."""
    settings = ctx.settings
    owned = owned_key(ctx, account_name)
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hset(owned, task_id, job.id)
        pipe.expire(owned, 2 * 86400)
        pipe.execute()
    plan = ctx.plan(account_name)
    now = ctx.clock()
    answer = ctx.store.record_task(
        job,
        task_id,
        {
            "provider_request_id": request_id,
            "provider_status": "PENDING",
            "poll_plan": plan.polls.as_dict(),
            "watch_at": now + plan.watch_after,
        },
        due=now + plan.polls.first_delay,
    )
    if answer.outcome is Recorded.SUBMITTED:
        log.info("job %s: submitted as provider task %s on %s", job.id, task_id, account_name)
        send.poll(job.id, countdown=plan.polls.first_delay)
        if settings.provider_events:
            _early_event(ctx, job.id, task_id)
        if ctx.watching(account_name):
            rewatch(ctx, account_name, plan.watch_after)
        if answer.cancel_requested:
            # Asked while the create was in flight: settled now that its task is known.
            log.info("job %s: a cancel was requested during the create; canceling", job.id)
            send.cancel(job.id)
        return
    if answer.task_id == task_id:
        return  # recorded before (adopted by a look, or this message ran twice)
    if answer.task_id is not None:
        # Never replace the job's task: this one is a second task for it, stopped if we can.
        log.error(
            "job %s: a second provider task %s was made (the job's is %s); canceling it",
            job.id,
            task_id,
            answer.task_id,
        )
        _stop(ctx, job, account_name, task_id)
        return
    if answer.outcome is Recorded.ENDED:
        # Ended while the create was in flight: the id is kept on it; stop the task if we can.
        log.warning("job %s: ended during create; canceling provider task %s", job.id, task_id)
        if _stop(ctx, job, account_name, task_id):
            ctx.admission.release(job.id, account_name, 0)


def _early_event(ctx: WorkerContext, job_id: str, task_id: str) -> None:
    """The provider's event for this task came before its id was recorded (the task ended
    while the create's answer was on its way): look now rather than at the safety net."""
    event_id: Any = ctx.redis.getdel(ctx.store.keys.provider_event_early(task_id))
    if event_id is not None:
        log.info(
            "job %s: its task ended before it was recorded (event %s); looking", job_id, event_id
        )
        send.poll_once(job_id)


def _stop(ctx: WorkerContext, job: Job, account_name: str, task_id: str) -> bool:
    """Cancel a task at the provider; True if it was canceled (it bills nothing)."""
    try:
        pace(ctx, ctx.settings.account(account_name))
        ctx.providers[account_name].cancel(task_id)
    except ProviderError as exc:
        log.warning("job %s: provider cancel of %s refused: %s", job.id, task_id, exc)
        return False
    return True
