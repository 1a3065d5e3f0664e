"""A finished batch, written next to its outputs: summary.json and a summary.html contact sheet."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from typing import Any

from PIL import Image

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
            "images": (job["request"] or {}).get("images", []),
            "outputs": [output["uri"] for output in job["outputs"] if "uri" in output],
            "error": job["error"],
        }
        for job in jobs
    ]
    prefix = S3Location.parse_prefix(status["output"])
    written = {}
    for name, body, content_type in (
        ("summary.json", json.dumps(status, indent=2, sort_keys=True), "application/json"),
        ("summary.html", contact_sheet(status, ctx), "text/html; charset=utf-8"),
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
        with Image.open(io.BytesIO(data)) as image:
            small = image.convert("RGB")
            small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=80)
    except Exception as exc:  # a missing or odd image must not lose the whole sheet
        log.warning("thumbnail of %s not made: %s", uri, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(ctx: ProducerContext, uri: str) -> str:
    source = thumbnail(ctx, uri) if uri.startswith("s3://") else None
    name = html.escape(uri)
    if source is None:
        return f'<figure><a href="{name}">{name}</a></figure>'
    return f'<figure><img src="{source}" alt="{name}"><figcaption>{name}</figcaption></figure>'


def contact_sheet(status: dict[str, Any], ctx: ProducerContext) -> str:
    rows = []
    for job in status["jobs"]:
        inputs = "".join(_figure(ctx, uri) for uri in job["images"])
        if job["outputs"]:
            outputs = "".join(_figure(ctx, uri) for uri in job["outputs"])
        else:
            error = job["error"] or {}
            reason = f"{error.get('code', job['status'])}: {error.get('message', '')}"
            outputs = f'<p class="failed">{html.escape(reason)}</p>'
        rows.append(
            f"<tr><td>{html.escape(job['id'])}<br>{html.escape(job['status'])}</td>"
            f"<td>{inputs}</td><td>{outputs}</td></tr>"
        )
    for line in status["invalid_lines"]:
        rows.append(
            f"<tr><td>line {line['line']}<br>invalid</td><td></td>"
            f'<td><p class="failed">{html.escape(line["error"])}</p></td></tr>'
        )
    counts = ", ".join(f"{count} {name}" for name, count in sorted(status["by_status"].items()))
    title = f"wanedit batch {html.escape(str(status['id']))}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }}
td {{ border: 1px solid #ccc; padding: 6px; vertical-align: top; }}
figure {{ display: inline-block; margin: 4px; font-size: 11px; max-width: {THUMBNAIL_SIDE}px;
  word-break: break-all; }}
.failed {{ color: #b00; }}
</style></head><body>
<h1>{title}</h1>
<p>{html.escape(counts) or "no jobs"}; {status["invalid"]} invalid lines;
{status["images_billed"]} images billed, cost {status["cost"]} {status["currency"] or ""}</p>
<table><tr><th>job</th><th>inputs</th><th>outputs</th></tr>
{"".join(rows)}
</table></body></html>
"""
