"""A finished batch, written next to its outputs: summary.json and a summary.html contact sheet."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import Any

import jinja2

from wanedit.images import check_pixels, open_header
from wanedit.intake.batch import read_batch
from wanedit.intake.context import ProducerContext, get_context
from wanedit.storage import S3Location

log = logging.getLogger("wanedit.producers")
THUMBNAIL_SIDE = 160


def write_summary(batch_id: str, *, context: ProducerContext | None = None) -> dict[str, str]:
    """Write summary.json and summary.html under the batch's output prefix; returns their URIs."""
    ctx = context or get_context()
    status, jobs = read_batch(batch_id, ctx)
    status["jobs"] = [
        {
            "id": job["id"],
            "status": job["status"],
            "prompt": (job["request"] or {}).get("prompt", ""),
            "images": (job["request"] or {}).get("images", []),
            "outputs": [output["uri"] for output in job["outputs"] if "uri" in output],
            "error": job["error"],
        }
        for job in jobs
    ]
    prefix = S3Location.parse_prefix(status["output"])
    uris = {uri for job in status["jobs"] for uri in (*job["images"], *job["outputs"])}
    thumbnails = {uri: thumbnail(ctx, uri) for uri in uris if uri.startswith("s3://")}
    written = {}
    for name, body, content_type in (
        ("summary.json", json.dumps(status, indent=2, sort_keys=True), "application/json"),
        ("summary.html", contact_sheet(status, thumbnails), "text/html; charset=utf-8"),
    ):
        where = prefix.child(name)
        ctx.s3.put_object(
            Bucket=where.bucket, Key=where.key, Body=body.encode(), ContentType=content_type
        )
        written[name] = str(where)
    log.info("batch %s: summary written to %s", batch_id, prefix)
    return written


def thumbnail(ctx: ProducerContext, uri: str) -> str | None:
    """A small JPEG data URI of an s3:// image, or None when it cannot be read."""
    try:
        where = S3Location.parse_object(uri)
        data = ctx.s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
        with open_header(data) as image:
            check_pixels(image.width, image.height, uri)  # before anything is decoded
            small = image.convert("RGB")
            small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=80)
    except Exception as exc:  # a missing or odd image must not lose the whole sheet
        log.warning("thumbnail of %s not made: %s", uri, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def contact_sheet(status: dict[str, Any], thumbnails: Mapping[str, str | None]) -> str:
    """The summary page of a batch status (with its `jobs`); `thumbnails` maps an image URI
    to a data URI, and an image without one is shown as a link. Pure."""
    counts = ", ".join(f"{count} {name}" for name, count in sorted(status["by_status"].items()))
    return _template().render(
        batch=status, counts=counts, thumbnails=thumbnails, side=THUMBNAIL_SIDE
    )


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("wanedit.producers", "templates"),
        autoescape=True,  # prompts, URIs and error messages are the batch's callers' text
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("summary.html")
