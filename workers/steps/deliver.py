"""Telling others that a job ended: a Celery task of theirs sent by name, and a signed webhook.

The terminal transition recorded what is owed (`on_complete_status`, `webhook_status`) and put
the job in the callbacks index in the same atomic step; this task pays it. Each webhook attempt
is compare-and-set on the number of attempts made, so a redelivered message is dropped, and the
sweeper sends it again when its message was lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Any

import requests

from wanedit.config.allow import task_refusal
from wanedit.errors import ConfigError, JobNotFound, UrlNotAllowed
from wanedit.intake.ended import job_ended
from wanedit.store.record import Job, iso
from wanedit.webhooks import ANSWER_MAX, Targets, headers
from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.pinned import BODY_ERRORS, guarded_request, read_capped

log = logging.getLogger("wanedit.workers")


def deliver(ctx: WorkerContext, job_id: str, attempt: int) -> None:
    """Send an ended job's event to its callbacks; `attempt` is the number of webhook attempts
    made before this one. A failed attempt sends the next one as its own message."""
    delay = run_delivery(ctx, job_id, attempt)
    if delay is not None:
        send.deliver(job_id, attempt + 1, countdown=delay)


def run_delivery(ctx: WorkerContext, job_id: str, attempt: int) -> float | None:
    """Pay what is owed for one ended job; returns when the next webhook attempt is due."""
    try:
        job = ctx.store.get(job_id)
    except JobNotFound as exc:  # expired: nothing is owed any more
        log.warning("job %s: no record for its callbacks (%s)", job_id, exc)
        ctx.store.forget_callbacks(job_id)
        return None
    if job.event is None or not job.callbacks:
        return None
    targets = Targets(**job.callbacks)
    refused = task_refusal(ctx.settings, targets)
    if refused and job.on_complete_status == "pending":
        ctx.store.record_delivery(job.id, {"on_complete_status": "refused"})
        log.error("job %s: on_complete not sent: %s", job.id, refused)
    elif targets.on_complete and job.on_complete_status == "pending":
        send.on_complete(targets.on_complete, json.loads(job.event), targets.on_complete_queue)
        ctx.store.record_delivery(job.id, {"on_complete_status": "sent"})
        log.info(
            "job %s: sent %s to queue %s", job.id, targets.on_complete, targets.on_complete_queue
        )
    if not targets.webhook_url or job.webhook_status != "pending":
        ctx.store.record_delivery(job.id, {}, done=True)
        return None
    if len(job.webhook_attempts) != attempt:
        return None  # an older message: that attempt was made already
    settings = ctx.settings
    timeout = (settings.http_connect_timeout, settings.http_read_timeout)
    # Two copies of one message (a redelivery racing the sweeper's) make one attempt.
    claim = ctx.store.keys.webhook_claim(job.id, attempt)
    if not ctx.redis.set(claim, 1, nx=True, ex=int(sum(timeout)) + 30):
        return None
    return _attempt(ctx, job, targets.webhook_url, attempt, timeout)


def _attempt(
    ctx: WorkerContext, job: Job, url: str, attempt: int, timeout: tuple[float, float]
) -> float | None:
    settings = ctx.settings
    now = ctx.clock()
    record: dict[str, Any] = {"at": iso(now), "status_code": None, "error": None}
    started = time.perf_counter()
    final: str | None = None
    try:
        key = settings.webhook_key()
        body = job.event.encode() if job.event else b""
        event_id = json.loads(body)["event_id"]
        # Checked, and sent to the checked address; redirects are not followed.
        response = guarded_request(
            ctx.webhooks,
            "POST",
            url,
            allow_private=settings.allow_private_urls,
            timeout=timeout,
            resolve=ctx.resolve,
            headers=headers(key, event_id, int(now), body),
            data=body,
        )
        # The answer's status is what counts: read a little of its body and hang up.
        with response, contextlib.suppress(*BODY_ERRORS):
            read_capped(response, ANSWER_MAX)
        record["status_code"] = response.status_code
        if 200 <= response.status_code < 300:
            final = "delivered"
        else:
            record["error"] = f"HTTP {response.status_code}"
    except UrlNotAllowed as exc:
        record["error"] = f"UrlNotAllowed: refused to send to {exc}"
        final = "failed"  # retrying cannot help
    except ConfigError as exc:
        record["error"] = f"ConfigError: {exc}"
        final = "failed"
    except (requests.RequestException, OSError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["duration"] = round(time.perf_counter() - started, 3)
    attempts = [*job.webhook_attempts, record]
    changes: dict[str, Any] = {"webhook_attempts": attempts}
    delay = None
    if final is None:
        first_at = job.timestamps.get(job.status.value, now)
        delay = ctx.retry_policy.delay_before(
            len(attempts) - 1, now=now, deadline=first_at + settings.webhook_deadline, rand=ctx.rand
        )
        if delay is None:
            final = "failed"
            record["error"] = f"{record['error']}; gave up at the delivery deadline"
    if final is not None:
        changes["webhook_status"] = final
    due = None if delay is None else now + delay
    if not ctx.store.record_delivery(
        job.id, changes, attempts=attempt, due=due, done=final is not None
    ):
        return None  # another copy recorded this attempt first
    if final == "delivered":
        log.info("job %s: webhook delivered (attempt %d)", job.id, len(attempts))
    elif final == "failed":
        log.error(
            "job %s: webhook failed after %d attempts: %s", job.id, len(attempts), record["error"]
        )
    else:
        log.info(
            "job %s: webhook attempt %d: %s, again in %.1fs",
            job.id,
            len(attempts),
            record["error"],
            delay,
        )
    return delay if final is None else None


def notify(ctx: WorkerContext, job: Job) -> None:
    """After a terminal transition: deliver now what it recorded as owed (and let go of what
    the job leaves behind: its staged inputs; its batch's retention starts again)."""
    job_ended(job, settings=ctx.settings, client=ctx.redis, keys=ctx.store.keys, s3=ctx.s3)
    if ctx.settings.callback_targets(job.request).any:
        send.deliver(job.id, 0)


def redrive(ctx: WorkerContext, now: float) -> int:
    """Send again the callbacks whose message was lost (the sweeper calls this)."""
    sent = 0
    for job_id in ctx.store.callbacks_overdue(now - ctx.settings.sweep_grace, 500):
        try:
            job = ctx.store.get(job_id)
        except JobNotFound:  # expired
            ctx.store.forget_callbacks(job_id)
            continue
        ctx.store.record_delivery(job.id, {}, due=now)
        log.warning("job %s: callbacks overdue; sending them again", job.id)
        send.deliver(job.id, len(job.webhook_attempts))
        sent += 1
    return sent
