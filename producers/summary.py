"""A finished batch, written next to its outputs: summary.json, and a contact sheet of pages
(summary.html, the index, and summary-1.html, ... of WANEDIT_SUMMARY_PAGE_JOBS jobs each).

The sheet shows each result by the thumbnail the finisher stored beside it. With
WANEDIT_RESULT_URL_TTL set, every link on it is a presigned URL (the sheet opens from a private
bucket, until the URLs expire); without, links are relative to the batch's prefix (for a bucket
served over HTTP)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from wanedit.intake.batch import read_batch
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.lines import batch_lines
from wanedit.producers.labels import LineLabels, line_labels
from wanedit.producers.sheet import INDEX, render_sheet, tiles
from wanedit.results import presign
from wanedit.storage import S3Location

log = logging.getLogger("wanedit.producers")
LINK_KEY = "summary.html (link)"


def write_summary(batch_id: str, *, context: ProducerContext | None = None) -> dict[str, str]:
    """Write summary.json and the sheet's pages under the batch's output prefix; returns the
    URIs of summary.json and summary.html (and, with WANEDIT_RESULT_URL_TTL set, a link that
    opens the sheet)."""
    ctx = context or get_context()
    status, jobs = read_batch(batch_id, ctx)
    lines = _lines_by_job(ctx, batch_id)
    labels = {job["id"]: line_labels(job, *lines.get(job["id"], (None, None))) for job in jobs}
    status["jobs"] = [_summary_job(job, labels[job["id"]]) for job in jobs]
    prefix = S3Location.parse_prefix(status["output"])
    ttl = ctx.settings.result_url_ttl
    link, page_link = _linkers(ctx.s3, prefix, ttl)
    pages = render_sheet(
        status, tiles(jobs, labels, link), ctx.settings.summary_page_jobs, page_link
    )
    files = [("summary.json", json.dumps(status, indent=2, sort_keys=True), "application/json")]
    files += [(name, html, "text/html; charset=utf-8") for name, html in pages.items()]
    for name, body, content_type in files:
        where = prefix.child(name)
        ctx.s3.put_object(
            Bucket=where.bucket, Key=where.key, Body=body.encode(), ContentType=content_type
        )
    written = {name: str(prefix.child(name)) for name in ("summary.json", INDEX)}
    if ttl:
        written[LINK_KEY] = page_link(INDEX)
    log.info("batch %s: summary written to %s (%d pages)", batch_id, prefix, len(pages) - 1)
    return written


def _summary_job(job: dict[str, Any], labels: LineLabels) -> dict[str, Any]:
    request = job["request"] or {}
    return {
        "id": job["id"],
        "line": labels.line,
        "status": job["status"],
        "prompt": request.get("prompt", ""),
        "images": request.get("images", []),
        "input_names": list(labels.inputs),
        "outputs": [output["uri"] for output in job["outputs"] if "uri" in output],
        "thumbnails": [o["thumbnail"] for o in job["outputs"] if o.get("thumbnail")],
        "usage": job.get("usage"),
        "error": job["error"],
    }


def _lines_by_job(
    ctx: ProducerContext, batch_id: str
) -> dict[str, tuple[int, dict[str, Any] | None]]:
    """Which manifest line made each job (every attempt of a line), with the line's request as
    the manifest gave it."""
    found: dict[str, tuple[int, dict[str, Any] | None]] = {}
    for line in batch_lines(batch_id, context=ctx):
        for job_id in [*line.earlier, *([line.job_id] if line.job_id else [])]:
            found[job_id] = (line.number, line.request)
    return found


def _linkers(
    s3: Any, prefix: S3Location, ttl: int
) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """How the sheet links an `s3://` URI and one of its own pages."""
    if ttl:
        return (
            lambda uri: presign(s3, uri, ttl),
            lambda name: presign(s3, str(prefix.child(name)), ttl),
        )
    base = str(prefix)

    def relative(uri: str) -> str:
        return uri[len(base) :] if uri.startswith(base) else uri

    return relative, lambda name: name
