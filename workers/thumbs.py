"""Thumbnails beside results: made by the finisher, never the reason a job fails."""

from __future__ import annotations

import logging
from typing import Any

from wanedit.storage import S3Location, thumbnail_location
from wanedit.thumbs import make_thumbnail

log = logging.getLogger("wanedit.workers")


def store_thumbnail(s3: Any, job_id: str, output: S3Location, data: bytes) -> S3Location | None:
    """Write the JPEG thumbnail of a stored result beside it; None (logged) when it cannot be
    made or written: the result stands without one and the contact sheet links to it."""
    target = thumbnail_location(output)
    try:
        body = make_thumbnail(data, str(output))
        s3.put_object(Bucket=target.bucket, Key=target.key, Body=body, ContentType="image/jpeg")
    except Exception as exc:  # a thumbnail is a convenience: nothing about it may fail a job
        log.warning("job %s: no thumbnail for %s: %s", job_id, output, str(exc)[:300])
        return None
    return target
