"""Results people can open: presigned HTTPS GET URLs next to each result's `s3://` URI.

A URL carries an access key id and a signature, never the secret key; it opens one object
until it expires. The signing is local (no request to S3): any S3 client of boto3 does it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wanedit.storage import S3Location

# S3's Signature Version 4 signs for at most 7 days.
URL_TTL_MAX = 7 * 86400


def check_ttl(ttl: int, field: str = "--ttl") -> int:
    """A URL lifetime of 1 to 604800 seconds; ValueError names the field and the limit."""
    if not 1 <= ttl <= URL_TTL_MAX:
        raise ValueError(
            f"{field}: {ttl} s is outside 1 to {URL_TTL_MAX} s (S3 signs a URL for at most 7 days)"
        )
    return ttl


def presign(s3: Any, uri: str, ttl: int) -> str:
    """A GET URL for the object at `uri`, valid `ttl` seconds from now."""
    where = S3Location.parse_object(uri)
    return str(
        s3.generate_presigned_url(
            "get_object", Params={"Bucket": where.bucket, "Key": where.key}, ExpiresIn=ttl
        )
    )


def with_urls(outputs: list[dict[str, Any]], s3: Any, ttl: int, now: float) -> list[dict[str, Any]]:
    """The outputs, each stored one (`uri`) given `url` and `url_expires_at`, and
    `thumbnail_url` when it has a thumbnail; an output that failed is left as it is."""
    expires = datetime.fromtimestamp(now + ttl, UTC).isoformat(timespec="seconds")
    signed = []
    for output in outputs:
        if "uri" not in output:
            signed.append(output)
            continue
        extra = {"url": presign(s3, output["uri"], ttl), "url_expires_at": expires}
        if output.get("thumbnail"):
            extra["thumbnail_url"] = presign(s3, output["thumbnail"], ttl)
        signed.append({**output, **extra})
    return signed
