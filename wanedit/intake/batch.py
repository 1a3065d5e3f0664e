"""Batches: a manifest (or an S3 prefix of images) enqueued as one edit a line.

Progress lives in Redis under `{prefix}:batch:{id}`: a hash (total, enqueued, invalid, the last
line handled, ...), the job ids in a list, which line made which job, the lines that could
not be enqueued and each line's request as read (`wanedit.intake.lines`). Re-running the same
manifest finds each line's job by its idempotency key and adds nothing. A line that cannot be
read or enqueued is recorded with its reason and the batch goes on; only Redis or S3 being away
stops it. Progress expires WANEDIT_BATCH_RETENTION_SECONDS after the batch's last activity.

A scheduled batch runs in chunks (`run_chunk`), each a task of its own: the next
WANEDIT_BATCH_CHUNK_LINES lines after the last one handled, under a run lock that a killed
chunk holds back only until its lease ends. A canceled batch (`wanedit batch-cancel`) enqueues
no more lines. The counts users see are in `wanedit.intake.progress`; sending failed lines again
in `wanedit.intake.retry`.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import redis
import urllib3.exceptions
from celery.exceptions import SoftTimeLimitExceeded

from wanedit.errors import BackendUnavailable, InvalidRequest, WaneditError
from wanedit.intake import submit_edit, submit_many
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.lines import record_request
from wanedit.intake.manifest import (
    Line,
    batch_id_for,
    idempotency_key,
    is_image_key,
    manifest_format,
    parse_manifest,
)
from wanedit.intake.progress import (
    batch_jobs,
    batch_status,
    read_batch,
    summarize,
    wait_for_batch,
)
from wanedit.s3errors import S3_EXCEPTIONS, classify_s3_error
from wanedit.storage import S3Location
from wanedit.store.keys import BatchKeys

log = logging.getLogger("wanedit.producers")
PROGRESS_EVERY = 1000  # lines between updates of the batch's progress hash
# Lines enqueued together: one look-up of their idempotency keys and one create call.
ENQUEUE_CHUNK = 200
# Not a line's fault: the batch stops here (and is retried, or resumed by running it again).
_STOPS_THE_BATCH = (BackendUnavailable, redis.RedisError, SoftTimeLimitExceeded)
# What reading a manifest from S3 may raise, at the call or in the middle of its body.
_READ_ERRORS: tuple[type[Exception], ...] = (*S3_EXCEPTIONS, urllib3.exceptions.HTTPError)


@dataclass(frozen=True)
class Source:
    """Where a batch's lines come from: a manifest, or every image under an S3 prefix."""

    location: str
    prefix_fields: dict[str, Any] | None = None  # set: `location` is a prefix of images

    def lines(self, ctx: ProducerContext, after: int = 0) -> Iterator[Line]:
        """The lines after line `after` (0: all). Raises InvalidRequest when S3 says the
        manifest cannot be read (missing, denied) and BackendUnavailable when S3 is away."""
        if self.prefix_fields is not None:
            return _prefix_lines(ctx, self.location, self.prefix_fields, after)
        fmt = manifest_format(self.location)
        return parse_manifest(_text_lines(ctx, self.location), fmt, after=after)

    def digest(self, ctx: ProducerContext) -> str:
        """A hash of the content, read as a stream (a first pass over the manifest)."""
        hasher = hashlib.sha256()
        for line in self.lines(ctx):
            hasher.update(f"{line.number}:{line.digest}\n".encode())
        return hasher.hexdigest()


def _unreadable(exc: Exception, location: str) -> WaneditError:
    if isinstance(exc, S3_EXCEPTIONS):
        failure = classify_s3_error(exc)
        if failure.request_fault:
            return InvalidRequest([f"manifest: {failure.describe(location)}"])
        return BackendUnavailable(failure.describe(location))
    return BackendUnavailable(f"S3 is unavailable for {location} ({exc.__class__.__name__})")


def _text_lines(ctx: ProducerContext, location: str) -> Iterator[str]:
    # Bytes that are not UTF-8 are kept as surrogates: the parser reports that line alone.
    if not location.startswith("s3://"):
        with open(location, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            yield from handle
        return
    where = S3Location.parse_object(location)
    try:
        body = ctx.s3.get_object(Bucket=where.bucket, Key=where.key)["Body"]
        decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        for raw in body.iter_lines():
            yield decoder.decode(raw + b"\n")
    except _READ_ERRORS as exc:
        raise _unreadable(exc, location) from None


def _prefix_lines(
    ctx: ProducerContext, prefix: str, fields: dict[str, Any], after: int = 0
) -> Iterator[Line]:
    where = S3Location.parse_prefix(prefix)
    number = 0
    try:
        paginator = ctx.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=where.bucket, Prefix=where.key):
            for item in page.get("Contents", []):
                if not is_image_key(item["Key"]):
                    continue
                number += 1
                if number <= after:
                    continue
                uri = f"s3://{where.bucket}/{item['Key']}"
                line = {**fields, "images": [uri]}
                # The prompt and options are part of the line: a new prompt is a new batch.
                text = f"{json.dumps(line, sort_keys=True)}\n{item.get('ETag', '')}"
                yield Line(number, hashlib.sha256(text.encode()).hexdigest(), fields=line)
    except _READ_ERRORS as exc:
        raise _unreadable(exc, prefix) from None


def run_batch(
    source: Source,
    *,
    output: str | None = None,
    batch_id: str | None = None,
    context: ProducerContext | None = None,
    on_line: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Enqueue every line not enqueued before; a bad line is recorded and the batch goes on.
    Raises BackendUnavailable when Redis or S3 cannot be reached, InvalidRequest when the
    manifest cannot be read."""
    ctx = context or get_context()
    batch_id = batch_id or batch_id_for(source.location, source.digest(ctx))
    job_output = batch_output(ctx, batch_id, output)
    keys = ctx.store.keys.batch(batch_id)
    try:
        ctx.redis.hset(
            keys.info,
            mapping={"id": batch_id, "source": source.location, "output": job_output},
        )
        ctx.redis.hsetnx(keys.info, "started", time.time())
        total = 0
        for chunk in _chunks(source.lines(ctx), ENQUEUE_CHUNK):
            if canceled(ctx, keys):
                log.info("batch %s: canceled; no more lines enqueued", batch_id)
                break
            enqueue_lines(ctx, keys, batch_id, chunk, job_output)
            for line in chunk:
                total += 1
                if on_line:
                    on_line(line.number)
            if total % PROGRESS_EVERY < len(chunk):
                _record_progress(ctx, keys, total=total, done=False)
        _record_progress(ctx, keys, total=total, done=True)
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
    log.info("batch %s: %d lines from %s", batch_id, total, source.location)
    return batch_status(batch_id, context=ctx)


def batch_output(ctx: ProducerContext, batch_id: str, output: str | None) -> str:
    """Where the batch's jobs write: `{output}{batch_id}/`."""
    base = S3Location.parse_prefix(output) if output else ctx.settings.output_location
    return str(S3Location.parse_prefix(f"{base}{batch_id}/"))


def _record_progress(
    ctx: ProducerContext, keys: BatchKeys, *, total: int | None = None, done: bool
) -> None:
    # `total` is final only once the whole manifest is read; until then, the lines read so far.
    # (A chunked batch counts its total line by line, as it records each line handled.)
    ctx.redis.hset(
        keys.info,
        mapping={
            "read_all": int(done),
            "enqueued": ctx.redis.hlen(keys.lines),
            "invalid": ctx.redis.hlen(keys.invalid),
            **({} if total is None else {"total": total}),
        },
    )
    keep(ctx, keys)


def keep(ctx: ProducerContext, keys: BatchKeys) -> None:
    """Keep the batch's progress WANEDIT_BATCH_RETENTION_SECONDS from now."""
    retention = ctx.settings.batch_retention_seconds
    with ctx.redis.pipeline(transaction=False) as pipe:
        for key in keys.all:
            pipe.expire(key, retention)
        pipe.execute()


def canceled(ctx: ProducerContext, keys: BatchKeys) -> bool:
    """Whether `wanedit batch-cancel` stopped the batch: it enqueues no more lines."""
    return bool(ctx.redis.hexists(keys.info, "canceled"))


def enqueue_line(
    ctx: ProducerContext, keys: BatchKeys, batch_id: str, line: Line, job_output: str
) -> None:
    """Enqueue one line (or find the job it made before), or record why it cannot be.
    Raises only what stops the whole batch: Redis or S3 away, a task's time limit."""
    field = str(line.number)
    if line.fields is not None:
        record_request(ctx, keys, line.number, line.fields)
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
    except _STOPS_THE_BATCH:
        raise
    except Exception as exc:  # one line that breaks something unforeseen must not stop the rest
        log.exception("batch %s: line %s could not be enqueued", batch_id, field)
        problem = (
            f"could not be enqueued ({exc.__class__.__name__}); run the batch again to retry "
            "this line"
        )
        ctx.redis.hset(keys.invalid, field, problem)
        return
    ctx.redis.hdel(keys.invalid, field)
    if ctx.redis.hsetnx(keys.lines, field, job_id):
        ctx.redis.rpush(keys.jobs, job_id)


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def enqueue_lines(
    ctx: ProducerContext, keys: BatchKeys, batch_id: str, lines: list[Line], job_output: str
) -> None:
    """`enqueue_line` for a chunk of lines, in a few round trips: each line is enqueued (or its
    earlier job found), or recorded with why it cannot be, exactly as one at a time. Raises only
    what stops the whole batch: Redis or S3 away (nothing of the chunk recorded), a task's time
    limit."""
    with ctx.redis.pipeline(transaction=False) as pipe:
        requests: dict[Any, Any] = {
            str(line.number): json.dumps(line.fields, separators=(",", ":"))
            for line in lines
            if line.fields is not None
        }
        if requests:
            pipe.hset(keys.requests, mapping=requests)
        pipe.hmget(keys.lines, [str(line.number) for line in lines])
        done = pipe.execute()[-1]
    invalid: dict[Any, Any] = {}  # line number -> why it was not enqueued
    todo: list[Line] = []
    for line, job_id in zip(lines, done, strict=True):
        if job_id is not None:
            continue  # enqueued by an earlier run
        if line.error is not None or line.fields is None:
            invalid[str(line.number)] = line.error or "empty line"
        else:
            todo.append(line)
    requests_in = [
        {
            "output": job_output,
            **(line.fields or {}),
            "priority": "batch",
            "idempotency_key": idempotency_key(batch_id, line),
        }
        for line in todo
    ]
    outcomes = submit_many(requests_in, context=ctx) if todo else []
    enqueued: list[tuple[str, str]] = []
    for line, outcome in zip(todo, outcomes, strict=True):
        field = str(line.number)
        if isinstance(outcome, str):
            enqueued.append((field, outcome))
        elif isinstance(outcome, InvalidRequest):
            invalid[field] = "; ".join(outcome.problems)
        else:  # one line that broke something unforeseen must not stop the rest
            log.error("batch %s: line %s could not be enqueued", batch_id, field, exc_info=outcome)
            invalid[field] = (
                f"could not be enqueued ({outcome.__class__.__name__}); run the batch again to "
                "retry this line"
            )
    with ctx.redis.pipeline(transaction=False) as pipe:
        if invalid:
            pipe.hset(keys.invalid, mapping=invalid)
        if enqueued:
            pipe.hdel(keys.invalid, *(field for field, _ in enqueued))
        for field, job_id in enqueued:
            pipe.hsetnx(keys.lines, field, job_id)
        answers = pipe.execute()[-len(enqueued) :] if enqueued else []
    new = [job_id for (_, job_id), first in zip(enqueued, answers, strict=True) if first]
    if new:
        ctx.redis.rpush(keys.jobs, *new)


class Chunk(Enum):
    """How a chunk of a scheduled batch ended."""

    MORE = "more"  # lines remain: the next chunk goes on after the last line handled
    DONE = "done"  # the whole manifest is handled: the batch is over
    # Another runner holds the batch, this copy fell behind, or the manifest cannot be read
    # now (the batch resumes when its slot is sent again): stop.
    STOPPED = "stopped"


def begin_scheduled(
    batch_id: str,
    location: str,
    output: str | None,
    token: str,
    *,
    lease: int,
    context: ProducerContext | None = None,
) -> bool:
    """Take a scheduled batch's run lock for `token` and record where it reads and writes.
    False when another runner holds the lock or the batch is over (nothing to run)."""
    ctx = context or get_context()
    keys = ctx.store.keys.batch(batch_id)
    if not ctx.store.scripts.batch_hold(batch_id, token=token, lease=lease):
        return False
    if ctx.redis.hget(keys.info, "finished") or canceled(ctx, keys):
        ctx.store.scripts.batch_hold(batch_id, token=token, lease=0)
        return False
    output_prefix = batch_output(ctx, batch_id, output)
    ctx.redis.hset(keys.info, mapping={"id": batch_id, "source": location, "output": output_prefix})
    ctx.redis.hsetnx(keys.info, "started", time.time())
    keep(ctx, keys)
    return True


def run_chunk(
    batch_id: str,
    token: str,
    *,
    lines: int,
    lease: int,
    budget: float,
    context: ProducerContext | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Chunk:
    """Enqueue the next `lines` lines after the last one handled (for at most `budget` seconds),
    recording each line as handled as soon as it is; safe to run twice and to be cut off
    anywhere: a line is enqueued under its idempotency key, so running it again finds its job.
    Raises BackendUnavailable when Redis or S3 is away (the chunk is worth retrying)."""
    ctx = context or get_context()
    keys = ctx.store.keys.batch(batch_id)
    hold = ctx.store.scripts.batch_hold
    retention = ctx.settings.batch_retention_seconds
    after = 0
    try:
        if not hold(batch_id, token=token, lease=lease):
            log.info("batch %s: run by another runner; this chunk stops", batch_id)
            return Chunk.STOPPED
        info = {str(key): str(value) for key, value in ctx.redis.hgetall(keys.info).items()}
        if not info.get("source") or info.get("finished") or info.get("canceled"):
            hold(batch_id, token=token, lease=0)
            return Chunk.DONE
        after = int(info.get("line") or 0)
        ctx.redis.hincrby(keys.info, "chunks", 1)
        ends_at = clock() + budget
        source = Source(info["source"]).lines(ctx, after=after)
        for count, line in enumerate(source, start=1):
            if canceled(ctx, keys):
                log.info("batch %s: canceled; no more lines enqueued", batch_id)
                hold(batch_id, token=token, lease=0)
                return Chunk.DONE
            enqueue_line(ctx, keys, batch_id, line, info["output"])
            if not hold(batch_id, token=token, lease=lease, line=line.number, retention=retention):
                log.info("batch %s: line %d was handled by another runner", batch_id, line.number)
                return Chunk.STOPPED
            if count >= lines or clock() >= ends_at:
                _record_progress(ctx, keys, done=False)
                log.info("batch %s: %d lines, up to line %d", batch_id, count, line.number)
                return Chunk.MORE
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
    except (InvalidRequest, OSError) as exc:
        # The manifest cannot be read (missing, denied): the batch waits, unlocked, until its
        # slot is sent again; then it resumes after its last line handled.
        reason = "; ".join(exc.problems) if isinstance(exc, InvalidRequest) else str(exc)
        log.error("batch %s: stopped after line %d: %s", batch_id, after, reason)
        ctx.redis.hset(keys.info, "error", reason)
        hold(batch_id, token=token, lease=0)
        return Chunk.STOPPED
    end_batch(ctx, batch_id, token)
    return Chunk.DONE


def end_batch(ctx: ProducerContext, batch_id: str, token: str) -> None:
    """Mark a scheduled batch as over, start its retention and let go of its run lock."""
    keys = ctx.store.keys.batch(batch_id)
    ctx.redis.hset(keys.info, "finished", time.time())
    ctx.redis.hdel(keys.info, "error")
    _record_progress(ctx, keys, done=True)
    ctx.store.scripts.batch_hold(batch_id, token=token, lease=0)
    info = ctx.redis.hgetall(keys.info)
    log.info(
        "batch %s: over: %s lines, %s enqueued, %s invalid",
        batch_id,
        info.get("total", 0),
        info.get("enqueued", 0),
        info.get("invalid", 0),
    )


__all__ = [
    "Chunk",
    "Source",
    "batch_jobs",
    "batch_output",
    "batch_status",
    "begin_scheduled",
    "canceled",
    "enqueue_line",
    "enqueue_lines",
    "keep",
    "read_batch",
    "run_batch",
    "run_chunk",
    "summarize",
    "wait_for_batch",
]
