"""The Python API for backends: small, synchronous, safe to call from request handlers."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from kombu.exceptions import OperationalError

from wanedit.config.celery import CANCEL_TASK, DELIVER_TASK
from wanedit.errors import InvalidRequest
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.ended import job_ended
from wanedit.intake.submit import nudge, unavailable
from wanedit.producers.accounts import paused_note
from wanedit.results import with_urls
from wanedit.states import Status
from wanedit.store.record import Job

log = logging.getLogger("wanedit.producers")


def get_job(job_id: str, *, context: ProducerContext | None = None) -> dict[str, Any]:
    """The job record as a dict; raises JobNotFound. A queued job says what it waits for; with
    WANEDIT_RESULT_URL_TTL set, each stored output has a fresh presigned `url`."""
    ctx = context or get_context()
    try:
        job = ctx.store.get(job_id).public()
        if job["status"] == Status.QUEUED.value:
            job["waiting_for"] = _waiting_for(ctx)
        if ctx.settings.result_url_ttl:
            # Signed at each read: the URLs in the job's event expire.
            job["outputs"] = with_urls(
                job["outputs"], ctx.s3, ctx.settings.result_url_ttl, time.time()
            )
        return job
    except redis.RedisError as exc:
        raise unavailable(exc) from None


def _waiting_for(ctx: ProducerContext) -> str:
    if note := paused_note(ctx):
        return note
    cap = ctx.admission.paused()
    if cap is not None:
        return (
            f"daily_cap: the daily cap of {cap} images is reached; admission resumes at "
            "00:00 UTC or when the cap is raised (wanedit cap)"
        )
    return "slot: a free provider slot (the backlog is served best-first)"


def quota(*, context: ProducerContext | None = None) -> dict[str, Any]:
    """Accounts, their slots in use, today's images and cost, the cap and the backlog."""
    ctx = context or get_context()
    try:
        spent = ctx.admission.spent_today()
        pauses = ctx.admission.pauses.all()
        accounts = []
        for account in ctx.settings.accounts:
            images = spent.get(account.name, 0)
            accounts.append(
                {
                    "name": account.name,
                    "base_url": account.base_url,
                    "in_flight": ctx.admission.in_flight(account.name),
                    "concurrency": account.concurrency,
                    "submit_rate": account.submit_rate,
                    "query_rate": account.query_rate,
                    "images_today": images,
                    "price_per_image": account.price,
                    "cost_today": round(images * account.price, 6),
                    "currency": account.currency,
                    "paused": pauses[account.name].as_dict() if account.name in pauses else None,
                }
            )
        cap = ctx.admission.cap()
        return {
            "accounts": accounts,
            "images_today": spent.get("total", 0),
            "daily_image_cap": cap or None,
            "paused": ctx.admission.paused() is not None,
            "waiting": ctx.admission.waiting(),
        }
    except redis.RedisError as exc:
        raise unavailable(exc) from None


def set_daily_cap(images: int | None, *, context: ProducerContext | None = None) -> dict[str, Any]:
    """Change the daily image cap for every worker at once (0: no cap; None: the setting's
    value), and let admission look again. Images counted today are reserved at admission
    (n per job) and corrected to the billed count when each job ends."""
    ctx = context or get_context()
    if images is not None and images < 0:
        raise InvalidRequest([f"images: {images} must be 0 (no cap) or more"])
    try:
        ctx.admission.set_cap(images)
    except redis.RedisError as exc:
        raise unavailable(exc) from None
    nudge(ctx)
    return quota(context=ctx)


def cancel_job(job_id: str, *, context: ProducerContext | None = None) -> dict[str, Any]:
    """Cancel a job: a queued one is never sent; a submitted one is canceled at the provider
    while it is still PENDING there. A job whose create is in flight is canceled once the
    create's task is known (`cancel_requested` is true meanwhile); a task that has started runs
    on and its result is delivered (its event says `"cancel": "too_late"`). Returns the job as
    it stands after the request."""
    ctx = context or get_context()
    try:
        job = ctx.store.get(job_id)
        if job.status.terminal:
            return job.public()
        # Asked first: from here on no create may go for it, and a create recorded from now
        # on sees the request and cancels its task.
        if not ctx.store.update(job, {"cancel_requested": True}, while_in=_OPEN):
            return ctx.store.get(job_id).public()
        job = ctx.store.get(job_id)
        if job.status is Status.QUEUED and job.create_sent_at is None:
            # One compare-and-set from queued only: a job that moved on meanwhile is left to
            # the cancel task below (never a running job canceled here).
            if ctx.store.transition(
                job, Status.CANCELED, {"error": _CANCELED}, allowed_from=[Status.QUEUED]
            ):
                return _ended_here(ctx, job)
            job = ctx.store.get(job_id)
        if job.status.terminal or job.status is Status.QUEUED:
            # Queued with a create in flight: the worker settles the cancel once it is answered.
            return job.public()
        ctx.celery.send_task(CANCEL_TASK, args=[job_id], queue=ctx.settings.queue)
        return ctx.store.get(job_id).public()
    except (OperationalError, redis.RedisError) as exc:
        raise unavailable(exc) from None


_CANCELED = {"code": "Canceled", "message": "canceled at the user's request"}
_OPEN = (Status.QUEUED, Status.SUBMITTED, Status.RUNNING)


def _ended_here(ctx: ProducerContext, job: Job) -> dict[str, Any]:
    """This call ended a job that never sent a create: its slot, if admission gave it one, is
    given back at once, with nothing billed, and admission looks again."""
    if job.account and ctx.admission.release(job.id, job.account, 0):
        nudge(ctx)
    ended = ctx.store.get(job.id)
    job_ended(ended, settings=ctx.settings, client=ctx.redis, keys=ctx.store.keys, s3=ctx.s3)
    if ended.callbacks:
        # Owed since the transition (the sweeper would send it): send it now.
        ctx.celery.send_task(DELIVER_TASK, args=[job.id, 0], queue=ctx.settings.queue)
    return ended.public()


def wait_for_job(
    job_id: str,
    timeout: float | None = None,
    *,
    interval: float = 0.25,
    context: ProducerContext | None = None,
) -> dict[str, Any]:
    """Block until the job ends (or `timeout` seconds pass); returns the job as it stands."""
    ctx = context or get_context()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = get_job(job_id, context=ctx)
        if Status(job["status"]).terminal:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            return job
        time.sleep(interval)
