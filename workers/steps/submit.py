"""Submit: create the provider task of an admitted job and record it before any poll."""

from __future__ import annotations

import logging

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
from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed_so_far
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
    retry_or_fail,
    rewatch,
)
from wanedit.workers.transfer import resolve_image

log = logging.getLogger("wanedit.workers")


def submit(
    ctx: WorkerContext, job_id: str, account_name: str, delivery: Delivery
) -> RetryLater | None:
    """Create the provider task for an admitted job, record its id, then schedule the first poll."""
    with creating():
        return _submit(ctx, job_id, account_name, delivery)


def _submit(
    ctx: WorkerContext, job_id: str, account_name: str, delivery: Delivery
) -> RetryLater | None:
    job = load(ctx, job_id)
    if job is None:
        ctx.admission.release(job_id, account_name, 0)
        return None
    if job.status is not Status.QUEUED:
        if job.status.terminal and job.provider_task_id is None:
            ended(ctx, job, billed_so_far(job))  # ended while admitted: the slot was never used
        return None
    if not ctx.admission.claim(job.id, account_name):
        log.warning(
            "job %s: its slot on %s has lapsed; it waits for admission", job.id, account_name
        )
        return None
    if lost_too_often(ctx, job, delivery):
        return None
    settings = ctx.settings
    if job.create_sent_at is not None:
        # A create went out before (its answer was lost, or its worker died): look first.
        reconcile_later(ctx, job, 0.0)
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
    if not ctx.store.mark_create(job.id):
        reconcile_later(ctx, job, 0.0)
        return None
    try:
        task_id, request_id = provider.create(settings.model, request.provider_input(images))
    except OutcomeUnknown as exc:
        # It may have made a task (and will bill it): never send it again blindly.
        log.warning("job %s: create answer lost (%s); reconciling", job.id, exc)
        # The list row of a task this create made carries the error answer's request id.
        lost = {"provider_request_id": exc.request_id, "last_error": exc.as_dict()}
        ctx.store.update(job, lost, while_in=[Status.QUEUED])
        reconcile_later(ctx, job, settings.reconcile_delay)
        return None
    except TransientProviderError as exc:
        # The provider answered with an error, or the request never left: no task was made.
        ctx.store.clear_create(job)
        if exc.throttled:
            ctx.admission.pushed_back(account_name, "submit")
        return retry_or_fail(ctx, job, exc, delivery, throttled=exc.throttled)
    except TerminalProviderError as exc:
        # A refused create made no task (`job` was read before the create was marked).
        fail(ctx, job, exc.code, exc.message, billed=billed_so_far(job))
        return None
    record_created(ctx, job, account.name, task_id, request_id)
    return None


def record_created(
    ctx: WorkerContext, job: Job, account_name: str, task_id: str, request_id: str | None
) -> None:
    """The provider task exists: record it before any poll can be scheduled."""
    settings = ctx.settings
    provider = ctx.providers[account_name]
    owned = owned_key(ctx, account_name)
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hset(owned, task_id, job.id)
        pipe.expire(owned, 2 * 86400)
        pipe.execute()
    plan = ctx.plan(account_name)
    recorded = ctx.store.transition(
        job,
        Status.SUBMITTED,
        {
            "provider_task_id": task_id,
            "provider_request_id": request_id,
            "provider_status": "PENDING",
            "poll_plan": plan.polls.as_dict(),
            "watch_at": ctx.clock() + plan.watch_after,
        },
    )
    if not recorded:
        # Canceled while the create was in flight: keep the id, and stop the task if we can.
        ctx.store.update(job, {"provider_task_id": task_id}, while_in=None)
        log.warning("job %s: canceled during create; canceling provider task %s", job.id, task_id)
        try:
            pace(ctx, settings.account(account_name))
            provider.cancel(task_id)
        except ProviderError as exc:
            log.warning("job %s: provider cancel refused: %s", job.id, exc)
        return
    log.info("job %s: submitted as provider task %s on %s", job.id, task_id, account_name)
    ctx.store.set_due(job.id, ctx.clock() + plan.polls.first_delay)
    send.poll(job.id, countdown=plan.polls.first_delay)
    if settings.poll_mode == "list":
        rewatch(ctx, account_name, plan.watch_after)
