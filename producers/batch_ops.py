"""Operations on a whole batch: send its failed lines again, cancel it, export one row a line."""

from __future__ import annotations

import csv
import itertools
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

import redis

from wanedit.errors import BackendUnavailable, InvalidRequest, JobNotFound
from wanedit.intake.batch import keep
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.lines import BatchLine, batch_lines
from wanedit.intake.retry import retry_batch
from wanedit.producers.api import cancel_job
from wanedit.states import Status

log = logging.getLogger("wanedit.producers")
# The columns of `wanedit batch-export`, in order.
COLUMNS = (
    "line",
    "inputs",
    "prompt",
    "status",
    "outputs",
    "error_code",
    "error_message",
    "cost",
    "currency",
    "job_id",
    "attempts",
)
FORMATS = ("jsonl", "csv")
CHUNK = 500


def cancel_batch(batch_id: str, *, context: ProducerContext | None = None) -> dict[str, int]:
    """Stop the batch enqueueing more lines and cancel its lines not yet sent to the provider;
    lines in flight finish. Returns counts: `canceled`, `in_flight`, `ended` (before this call).
    Raises JobNotFound for an unknown batch, BackendUnavailable when Redis cannot be reached."""
    ctx = context or get_context()
    keys = ctx.store.keys.batch(batch_id)
    counts = {"canceled": 0, "in_flight": 0, "ended": 0}
    try:
        if not ctx.redis.exists(keys.info):
            raise JobNotFound(f"batch {batch_id} does not exist")
        # First: no chunk or run enqueues a line after this.
        ctx.redis.hsetnx(keys.info, "canceled", time.time())
        pending: list[str] = []
        for line in batch_lines(batch_id, context=ctx):
            if line.job_id is not None:
                pending.append(line.job_id)
            if len(pending) >= CHUNK:
                _cancel_chunk(ctx, pending, counts)
                pending = []
        _cancel_chunk(ctx, pending, counts)
        keep(ctx, keys)
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
    log.info("batch %s: canceled: %s", batch_id, counts)
    return counts


def _cancel_chunk(ctx: ProducerContext, job_ids: list[str], counts: dict[str, int]) -> None:
    for job in ctx.store.get_many(job_ids):
        if job.status.terminal:
            counts["ended"] += 1
        elif job.status is Status.QUEUED and job.create_sent_at is None:
            after = cancel_job(job.id, context=ctx)
            # A job whose create went out meanwhile runs on (its cancel is settled by its worker).
            counts["canceled" if after["status"] == Status.CANCELED.value else "in_flight"] += 1
        else:
            counts["in_flight"] += 1


def batch_rows(
    batch_id: str, *, context: ProducerContext | None = None
) -> Iterator[dict[str, Any]]:
    """One row a line handled, in line order, with the columns in COLUMNS."""
    ctx = context or get_context()
    pending: list[BatchLine] = []
    for line in batch_lines(batch_id, context=ctx):
        pending.append(line)
        if len(pending) >= CHUNK:
            yield from _rows(ctx, pending)
            pending = []
    yield from _rows(ctx, pending)


def _rows(ctx: ProducerContext, lines: list[BatchLine]) -> Iterator[dict[str, Any]]:
    wanted = [job_id for line in lines for job_id in (*line.earlier, line.job_id) if job_id]
    try:
        jobs = {job.id: job for job in ctx.store.get_many(wanted)}
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
    for line in lines:
        job = jobs.get(line.job_id or "")
        error = (job.error if job else None) or {}
        cost, currency = 0.0, None
        for job_id in (*line.earlier, line.job_id):
            usage = (jobs[job_id].usage or {}) if job_id in jobs else {}
            cost += usage.get("cost") or 0.0
            currency = currency or usage.get("currency")
        status = job.status.value if job else ("invalid" if line.job_id is None else "expired")
        yield {
            "line": line.number,
            "inputs": line.inputs,
            "prompt": line.prompt,
            "status": status,
            "outputs": [o["uri"] for o in (job.outputs if job else []) if o.get("uri")],
            "error_code": "InvalidLine" if line.error else error.get("code"),
            "error_message": line.error or error.get("message"),
            "cost": round(cost, 6),
            "currency": currency,
            "job_id": line.job_id,
            "attempts": line.attempts,
        }


def export_batch(
    batch_id: str,
    format: str = "jsonl",
    out: IO[str] | str | None = None,
    *,
    context: ProducerContext | None = None,
) -> int:
    """Write one row a line to `out` (a text stream or a file name; default stdout) as JSONL or
    CSV (lists joined with `|`, empty cells for none); returns the number of rows. Raises
    JobNotFound for an unknown batch before anything is written."""
    if format not in FORMATS:
        raise InvalidRequest([f"format: {format!r} is not one of {', '.join(FORMATS)}"])
    rows = batch_rows(batch_id, context=context)
    first = next(rows, None)  # an unknown batch raises here, before a file is made
    if isinstance(out, str):
        with open(out, "w", encoding="utf-8", newline="") as handle:
            return _write(handle, format, first, rows)
    return _write(out or sys.stdout, format, first, rows)


def _write(
    stream: IO[str], format: str, first: dict[str, Any] | None, rest: Iterator[dict[str, Any]]
) -> int:
    writer = csv.DictWriter(stream, fieldnames=COLUMNS) if format == "csv" else None
    if writer:
        writer.writeheader()
    count = 0
    for row in itertools.chain([first] if first else [], rest):
        if writer:
            writer.writerow({key: _cell(value) for key, value in row.items()})
        else:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "|".join(str(item) for item in value)
    return "" if value is None else value


__all__ = ["COLUMNS", "batch_rows", "cancel_batch", "export_batch", "retry_batch"]
