"""`wanedit.enqueue`: submit_edit for backends in other languages, which send a message by name.

The message carries the caller's job id and the request (the JSON Schema `wanedit schema`
prints). There is no result backend: the caller knows its job id before sending and reads the
job record or the event stream. Data URIs are staged into S3 here, as the producer would.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from wanedit.config.celery import ENQUEUE_TASK
from wanedit.config.settings import get_settings
from wanedit.errors import BackendUnavailable, InvalidRequest
from wanedit.ids import is_job_id
from wanedit.intake import enqueue_message, record_rejection
from wanedit.intake.context import get_context
from wanedit.workers.celery_app import app
from wanedit.workers.policy.retry import RetryPolicy

log = logging.getLogger("wanedit.workers")


@app.task(name=ENQUEUE_TASK, bind=True, max_retries=None)
def enqueue(self: Task, job_id: str, request: dict[str, Any]) -> None:
    """Validate, stage, record and queue one edit under the caller's job id."""
    try:
        enqueue_message(request, job_id)
    except InvalidRequest as exc:
        if not is_job_id(job_id):
            log.error("enqueue message %s dropped: %s", self.request.id, exc)
        # Otherwise recorded as a failed job, with its event.
    except BackendUnavailable as exc:
        settings = get_settings()
        attempt = self.request.retries or 0
        policy = RetryPolicy(
            base=settings.retry_base, cap=settings.retry_cap, budget=settings.retry_max
        )
        if not policy.spent(attempt):
            delay = policy.delay(attempt)
            log.info("job %s: enqueue: %s, retry %d in %.1fs", job_id, exc, attempt + 1, delay)
            raise self.retry(countdown=delay, exc=None) from None
        try:
            record_rejection(get_context(), job_id, "BackendUnavailable", str(exc))
        except BackendUnavailable:
            log.error("job %s: enqueue gave up after %d attempts: %s", job_id, attempt + 1, exc)
    except Exception as exc:
        # Never let a request that breaks something unforeseen vanish: the caller watches its id.
        log.exception("job %s: enqueue failed", job_id)
        if is_job_id(job_id):
            message = f"the request could not be enqueued ({exc.__class__.__name__})"
            record_rejection(get_context(), job_id, "InternalError", message)
