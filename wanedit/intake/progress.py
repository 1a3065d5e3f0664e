"""A batch's progress as users see it: counts from the job records of each line's latest
attempt, failures by code, cost and an ETA from the rate so far."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis

from wanedit.errors import BackendUnavailable, JobNotFound
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.lines import superseded
from wanedit.states import Status


def batch_jobs(batch_id: str, context: ProducerContext | None = None) -> list[dict[str, Any]]:
    """The job of each line's latest attempt that still exists (records expire), in enqueue
    order, read in chunks."""
    ctx = context or get_context()
    keys = ctx.store.keys.batch(batch_id)
    earlier = superseded(ctx, keys)
    ids = (job_id for job_id in _job_ids(ctx, keys.jobs) if job_id not in earlier)
    return [job.public() for job in ctx.store.get_many(ids)]


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
        earlier = [job.public() for job in ctx.store.get_many(sorted(superseded(ctx, keys)))]
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
    return summarize(info, jobs, invalid, time.time(), earlier), jobs


def _text(mapping: dict[Any, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in mapping.items()}


def summarize(
    info: dict[str, str],
    jobs: list[dict[str, Any]],
    invalid: dict[str, str],
    now: float,
    earlier: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The batch as users see it: counts of each line's latest attempt (`jobs`); images billed
    and cost of every attempt (`earlier`: the attempts retried since). Pure."""
    by_status: dict[str, int] = {}
    by_code: dict[str, int] = {}
    billed, cost, currency = 0, 0.0, None
    for job in jobs:
        by_status[job["status"]] = by_status.get(job["status"], 0) + 1
        if job["status"] != Status.SUCCEEDED.value and job["error"]:
            code = job["error"].get("code") or "unknown"
            by_code[code] = by_code.get(code, 0) + 1
    for job in (*jobs, *earlier):
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
        "canceled": bool(info.get("canceled")),
        "error": info.get("error"),
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
        "retried_attempts": len(earlier),
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
