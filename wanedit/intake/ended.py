"""What a job leaves behind once it has ended: its staged inputs, and its batch's retention.

Called once per job, by whichever process made its terminal transition. Best effort: a failure
is logged and costs at most a staged copy left in S3, never the job.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from wanedit.config.settings import Settings
from wanedit.intake.manifest import batch_of
from wanedit.intake.staging import staged_locations, unstage
from wanedit.s3errors import S3_EXCEPTIONS
from wanedit.storage import S3Location
from wanedit.store.keys import Keys
from wanedit.store.record import Job

log = logging.getLogger("wanedit.producers")
_STAGING_ERRORS: tuple[type[Exception], ...] = (ValueError, *S3_EXCEPTIONS)


def job_ended(job: Job, *, settings: Settings, client: redis.Redis, keys: Keys, s3: Any) -> None:
    """Delete the inputs staged for `job` (local files and data: URIs copied into the staging
    prefix: nothing reads them once the job has ended) and keep its batch's progress for
    WANEDIT_BATCH_RETENTION_SECONDS from now."""
    images = [str(image) for image in (job.request or {}).get("images") or []]
    if images and job.output_uri:
        try:
            staging = settings.staging_location(S3Location.parse_prefix(job.output_uri))
            staged = staged_locations(images, staging, job.id)
            if staged:
                unstage(staged, s3)
                log.info("job %s: %d staged inputs deleted", job.id, len(staged))
        except _STAGING_ERRORS as exc:
            log.warning("job %s: staged inputs not deleted: %s", job.id, exc)
    batch_id = batch_of(str((job.request or {}).get("idempotency_key") or ""))
    if batch_id is None:
        return
    batch = keys.batch(batch_id)
    try:
        with client.pipeline(transaction=False) as pipe:
            for key in batch.all:
                pipe.expire(key, settings.batch_retention_seconds)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("job %s: batch %s retention not renewed: %s", job.id, batch_id, exc)
