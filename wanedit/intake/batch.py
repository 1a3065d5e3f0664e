"""Batches: a manifest (or an S3 prefix of images) enqueued as one edit a line.

Progress lives in Redis under `{prefix}:batch:{id}`: a hash (total, enqueued, invalid, ...), the
job ids in a list, which line made which job, and the lines that could not be enqueued.
Re-running the same manifest finds each line's job by its idempotency key and adds nothing.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from wanedit.errors import BackendUnavailable, InvalidRequest, JobNotFound
from wanedit.intake import submit_edit
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.manifest import (
    Line,
    batch_id_for,
    idempotency_key,
    is_image_key,
    manifest_format,
    parse_manifest,
)
from wanedit.states import Status
from wanedit.storage import S3Location
from wanedit.store.keys import BatchKeys

log = logging.getLogger("wanedit.producers")
PROGRESS_EVERY = 100  # lines between updates of the batch's progress hash


@dataclass(frozen=True)
class Source:
    """Where a batch's lines come from: a manifest, or every image under an S3 prefix."""

    location: str
    prefix_fields: dict[str, Any] | None = None  # set: `location` is a prefix of images

    def lines(self, ctx: ProducerContext) -> Iterator[Line]:
        if self.prefix_fields is not None:
            return _prefix_lines(ctx, self.location, self.prefix_fields)
        return parse_manifest(_text_lines(ctx, self.location), manifest_format(self.location))

    def digest(self, ctx: ProducerContext) -> str:
        """A hash of the content, read as a stream (a first pass over the manifest)."""
        hasher = hashlib.sha256()
        for line in self.lines(ctx):
            hasher.update(f"{line.number}:{line.digest}\n".encode())
        return hasher.hexdigest()


def _text_lines(ctx: ProducerContext, location: str) -> Iterator[str]:
    if not location.startswith("s3://"):
        with open(location, encoding="utf-8", newline="") as handle:
            yield from handle
        return
    where = S3Location.parse_object(location)
    body = ctx.s3.get_object(Bucket=where.bucket, Key=where.key)["Body"]
    decoder = codecs.getincrementaldecoder("utf-8")()
    for raw in body.iter_lines():
        yield decoder.decode(raw + b"\n")


def _prefix_lines(ctx: ProducerContext, prefix: str, fields: dict[str, Any]) -> Iterator[Line]:
    where = S3Location.parse_prefix(prefix)
    pages = ctx.s3.get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=where.key)
    number = 0
    for page in pages:
        for item in page.get("Contents", []):
            if not is_image_key(item["Key"]):
                continue
            number += 1
            uri = f"s3://{where.bucket}/{item['Key']}"
            line = {**fields, "images": [uri]}
            # The prompt and options are part of the line: a new prompt is a new batch.
            text = f"{json.dumps(line, sort_keys=True)}\n{item.get('ETag', '')}"
            yield Line(number, hashlib.sha256(text.encode()).hexdigest(), fields=line)


def run_batch(
    source: Source,
    *,
    output: str | None = None,
    batch_id: str | None = None,
    context: ProducerContext | None = None,
    on_line: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Enqueue every line not enqueued before; a bad line is recorded and the batch goes on.
    Raises BackendUnavailable when Redis or S3 cannot be reached."""
    ctx = context or get_context()
    batch_id = batch_id or batch_id_for(source.location, source.digest(ctx))
    base = S3Location.parse_prefix(output) if output else ctx.settings.output_location
    job_output = str(S3Location.parse_prefix(f"{base}{batch_id}/"))
    keys = ctx.store.keys.batch(batch_id)
    try:
        ctx.redis.hset(
            keys.info,
            mapping={"id": batch_id, "source": source.location, "output": job_output},
        )
        ctx.redis.hsetnx(keys.info, "started", time.time())
        total = 0
        for line in source.lines(ctx):
            total += 1
            _enqueue_line(ctx, keys, batch_id, line, job_output)
            if on_line:
                on_line(line.number)
            if total % PROGRESS_EVERY == 0:
                _record_progress(ctx, keys, total, done=False)
        _record_progress(ctx, keys, total, done=True)
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
    log.info("batch %s: %d lines from %s", batch_id, total, source.location)
    return batch_status(batch_id, context=ctx)


def _record_progress(ctx: ProducerContext, keys: BatchKeys, total: int, *, done: bool) -> None:
    # `total` is final only once the whole manifest is read; until then, the lines read so far.
    ctx.redis.hset(
        keys.info,
        mapping={
            "total": total,
            "read_all": int(done),
            "enqueued": ctx.redis.hlen(keys.lines),
            "invalid": ctx.redis.hlen(keys.invalid),
        },
    )


def _enqueue_line(
    ctx: ProducerContext, keys: BatchKeys, batch_id: str, line: Line, job_output: str
) -> None:
    field = str(line.number)
    if ctx.redis.hexists(keys.lines, field):
        return  # enqueued by an earlier run
    if line.error is not None or line.fields is None:
        ctx.redis.hset(keys.invalid, field, line.error or "empty line")
        return
    fields = {
        "output": job_output,
        **line.fields,
        "priority": "batch",
        "idempotency_key": idempotency_key(batch_id, line),
    }
    try:
        job_id = submit_edit(fields, context=ctx)
    except InvalidRequest as exc:
        ctx.redis.hset(keys.invalid, field, "; ".join(exc.problems))
        return
    ctx.redis.hdel(keys.invalid, field)
    if ctx.redis.hsetnx(keys.lines, field, job_id):
        ctx.redis.rpush(keys.jobs, job_id)


def batch_jobs(batch_id: str, context: ProducerContext | None = None) -> list[dict[str, Any]]:
    """The batch's jobs that still exist (records expire), in enqueue order, read in chunks."""
    ctx = context or get_context()
    keys = ctx.store.keys.batch(batch_id)
    return [job.public() for job in ctx.store.get_many(_job_ids(ctx, keys.jobs))]


def _job_ids(ctx: ProducerContext, key: str, chunk: int = 5000) -> Iterator[str]:
    start = 0
    while True:
        ids = ctx.redis.lrange(key, start, start + chunk - 1)
        yield from (str(job_id) for job_id in ids)
        if len(ids) < chunk:
            return
        start += chunk


def batch_status(batch_id: str, *, context: ProducerContext | None = None) -> dict[str, Any]:
    """Counts from the job records themselves, and an ETA from the rate so far."""
    return read_batch(batch_id, context or get_context())[0]


def read_batch(batch_id: str, ctx: ProducerContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The batch's status and its jobs, from one read of the job records."""
    keys = ctx.store.keys.batch(batch_id)
    try:
        info = _text(ctx.redis.hgetall(keys.info))
        if not info:
            raise JobNotFound(f"batch {batch_id} does not exist")
        jobs = batch_jobs(batch_id, ctx)
        invalid = _text(ctx.redis.hgetall(keys.invalid))
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
    return summarize(info, jobs, invalid, time.time()), jobs


def _text(mapping: dict[Any, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in mapping.items()}


def summarize(
    info: dict[str, str], jobs: list[dict[str, Any]], invalid: dict[str, str], now: float
) -> dict[str, Any]:
    """The batch as users see it. Pure."""
    by_status: dict[str, int] = {}
    by_code: dict[str, int] = {}
    billed, cost, currency = 0, 0.0, None
    for job in jobs:
        by_status[job["status"]] = by_status.get(job["status"], 0) + 1
        if job["status"] != Status.SUCCEEDED.value and job["error"]:
            code = job["error"].get("code") or "unknown"
            by_code[code] = by_code.get(code, 0) + 1
        usage = job.get("usage") or {}
        billed += usage.get("image_count") or 0
        cost += usage.get("cost") or 0.0
        currency = currency or usage.get("currency")
    done = by_status.get(Status.SUCCEEDED.value, 0)
    ended = sum(1 for job in jobs if Status(job["status"]).terminal)
    remaining = len(jobs) - ended
    started = float(info.get("started") or now)
    rate = ended / (now - started) if ended and now > started else 0.0
    return {
        "id": info.get("id"),
        "source": info.get("source"),
        "output": info.get("output"),
        "total": int(info.get("total") or 0),
        "read_all": info.get("read_all") == "1",
        "enqueued": len(jobs),
        "invalid": len(invalid),
        "done": done,
        "failed": ended - done,
        "running": remaining,
        "eta_seconds": round(remaining / rate, 1)
        if remaining and rate
        else (0 if not remaining else None),
        "by_status": by_status,
        "failures_by_code": by_code,
        "images_billed": billed,
        "cost": round(cost, 6),
        "currency": currency,
        "invalid_lines": [
            {"line": int(number), "error": error}
            for number, error in sorted(invalid.items(), key=lambda item: int(item[0]))
        ],
    }


def wait_for_batch(
    batch_id: str,
    timeout: float | None = None,
    *,
    interval: float = 0.5,
    context: ProducerContext | None = None,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Block until every job of the batch ends (or `timeout` seconds pass)."""
    ctx = context or get_context()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        began = time.monotonic()
        status = batch_status(batch_id, context=ctx)
        if on_poll:
            on_poll(status)
        if not status["running"] or (deadline is not None and time.monotonic() >= deadline):
            return status
        # Reading a huge batch takes a while: never spend more than a third of the time on it.
        time.sleep(max(interval, 2 * (time.monotonic() - began)))
