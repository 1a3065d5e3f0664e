"""Finish: stream every result image into S3, then end the job with exactly one event."""

from __future__ import annotations

import io
import logging
from typing import Any

from wanedit.config.allow import check_output
from wanedit.errors import (
    TerminalProviderError,
    TerminalStorageError,
    TransientProviderError,
    TransientStorageError,
)
from wanedit.results import with_urls
from wanedit.states import Status
from wanedit.storage import S3Location
from wanedit.store.record import Job
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed_so_far
from wanedit.workers.provider import ResultItem
from wanedit.workers.steps.common import Delivery, RetryLater, ended, fail, load, lost_too_often
from wanedit.workers.steps.deliver import notify
from wanedit.workers.thumbs import store_thumbnail
from wanedit.workers.transfer import copy_result

log = logging.getLogger("wanedit.workers")


def finish(ctx: WorkerContext, job_id: str, delivery: Delivery) -> RetryLater | None:
    """Copy the results of a task that succeeded; a result the provider could not make is
    recorded as that image's error."""
    job = load(ctx, job_id)
    if job is None or job.status is not Status.RUNNING or not job.provider_task_id:
        return None
    if lost_too_often(ctx, job, delivery):
        return None
    settings = ctx.settings
    prefix = S3Location.parse_prefix(job.output_uri)
    timeout = (settings.http_connect_timeout, settings.http_read_timeout)
    billed = billed_so_far(job)
    outputs: list[dict[str, Any]] = []
    try:
        check_output(settings, prefix)  # NotAllowed: a terminal StorageError, nothing written
        for index, raw in enumerate(job.provider_results or []):
            item = ResultItem(**raw)
            if item.url is None:
                error = {"code": item.code or "Unknown", "message": item.message or ""}
                outputs.append({"index": index, "error": error})
                continue
            copy = io.BytesIO()
            try:
                target = copy_result(
                    item,
                    index,
                    job_id=job.id,
                    provider_task_id=job.provider_task_id,
                    prefix=prefix,
                    s3=ctx.s3,
                    downloads=ctx.downloads,
                    timeout=timeout,
                    allow_private=settings.allow_private_urls,
                    resolve=ctx.resolve,
                    copy=copy,
                )
            except TerminalProviderError as exc:
                outputs.append({"index": index, "error": exc.as_dict()})
                continue
            output: dict[str, Any] = {"index": index, "uri": str(target)}
            thumb = (
                store_thumbnail(ctx.s3, job.id, target, copy.getvalue())
                if settings.thumbnails
                else None
            )
            if thumb is not None:
                output["thumbnail"] = str(thumb)
            outputs.append(output)
    except (TransientStorageError, TransientProviderError) as exc:
        return _retry_or_fail(ctx, job, exc, delivery)
    except TerminalStorageError as exc:
        fail(ctx, job, "StorageError", str(exc), billed=billed)
        return None

    stored = [output for output in outputs if "uri" in output]
    if stored and settings.result_url_ttl:
        # Signed now, for the event and the webhook; reading the job signs fresh ones.
        outputs = with_urls(outputs, ctx.s3, settings.result_url_ttl, ctx.clock())
    if stored:
        if ctx.store.transition(job, Status.SUCCEEDED, {"outputs": outputs, "error": None}):
            log.info("job %s: succeeded, %d of %d images stored", job.id, len(stored), len(outputs))
            notify(ctx, job)
        ended(ctx, job, billed)
        return None
    first = next((o["error"] for o in outputs if "error" in o), None)
    first = first or {"code": "NoResult", "message": "the provider returned no image"}
    fail(ctx, job, first["code"], first["message"], {"outputs": outputs}, billed=billed)
    return None


def _retry_or_fail(
    ctx: WorkerContext, job: Job, exc: Exception, delivery: Delivery
) -> RetryLater | None:
    """Storage or a download is away: retry with backoff until the finish deadline, which stays
    well inside the 24 hours the provider keeps results, then fail with what went wrong."""
    settings = ctx.settings
    now = ctx.clock()
    started = job.finish_since or now
    if now - started >= settings.finish_deadline:
        code = getattr(exc, "code", None) or "StorageUnavailable"
        message = f"results not stored within {settings.finish_deadline:.0f} s: {exc}"
        fail(ctx, job, code, message, billed=billed_so_far(job))
        return None
    delay = ctx.retry_policy.delay(delivery.retries, ctx.rand)
    log.info("job %s: %s, finish again in %.1fs", job.id, exc, delay)
    ctx.store.set_due(job.id, now + delay)
    return RetryLater(delay)
