"""Fresh presigned URLs of a job's results, for `wanedit url` and the Python API."""

from __future__ import annotations

import time

import redis

from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.submit import unavailable
from wanedit.results import check_ttl, with_urls

# What `wanedit url` signs for when neither --ttl nor WANEDIT_RESULT_URL_TTL says.
DEFAULT_URL_TTL = 3600


def result_urls(
    job_id: str, ttl: int | None = None, *, context: ProducerContext | None = None
) -> list[str]:
    """One GET URL per stored output of the job, in output order, valid `ttl` seconds (default:
    WANEDIT_RESULT_URL_TTL, else an hour). Raises JobNotFound; ValueError for a bad `ttl`;
    an empty list when the job has no stored output."""
    if ttl is not None:
        check_ttl(ttl)  # before any connection is made
    ctx = context or get_context()
    ttl = check_ttl(ttl if ttl is not None else ctx.settings.result_url_ttl or DEFAULT_URL_TTL)
    try:
        job = ctx.store.get(job_id)
    except redis.RedisError as exc:
        raise unavailable(exc) from None
    signed = with_urls(job.outputs, ctx.s3, ttl, time.time())
    return [output["url"] for output in signed if "url" in output]
