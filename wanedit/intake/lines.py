"""A batch's lines as recorded: each line's request as the manifest gave it, the job of its
latest attempt and the jobs of its earlier ones, or why it was never enqueued.

`batch_lines` reads them in line order, a chunk at a time, for exports and contact sheets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from wanedit.errors import BackendUnavailable, JobNotFound
from wanedit.intake.context import ProducerContext, get_context
from wanedit.store.keys import BatchKeys

CHUNK = 500  # lines read per Redis round trip


@dataclass(frozen=True)
class BatchLine:
    """One line of a batch: what the manifest asked for and what became of it."""

    number: int
    request: dict[str, Any] | None  # the line's fields as read (None: unreadable, or not kept)
    job_id: str | None  # the job of the latest attempt (None: never enqueued)
    earlier: list[str] = field(default_factory=list)  # jobs of earlier attempts, oldest first
    error: str | None = None  # why the line was never enqueued

    @property
    def inputs(self) -> list[str]:
        """The images as the manifest named them (paths, URLs, s3:// objects)."""
        return [str(image) for image in (self.request or {}).get("images") or []]

    @property
    def prompt(self) -> str | None:
        prompt = (self.request or {}).get("prompt")
        return None if prompt is None else str(prompt)

    @property
    def attempts(self) -> int:
        return len(self.earlier) + (1 if self.job_id else 0)


def record_request(
    ctx: ProducerContext, keys: BatchKeys, number: int, fields: dict[str, Any]
) -> None:
    """Keep a line's request as the manifest gave it (inputs as named, before any staging)."""
    ctx.redis.hset(keys.requests, str(number), json.dumps(fields, separators=(",", ":")))


def superseded(ctx: ProducerContext, keys: BatchKeys) -> set[str]:
    """The jobs of lines' earlier attempts: not counted in the batch's progress."""
    return {job_id for value in ctx.redis.hvals(keys.attempts) for job_id in str(value).split()}


def last_line(ctx: ProducerContext, keys: BatchKeys) -> int:
    """The highest line number the batch has handled so far."""
    info = ctx.redis.hmget(keys.info, ["total", "line"])
    known = [int(value) for value in info if value]
    return max(known, default=0)


def batch_lines(
    batch_id: str, *, context: ProducerContext | None = None, chunk: int = CHUNK
) -> Iterator[BatchLine]:
    """Every line the batch has handled, in line order: its request as the manifest gave it, its
    latest job and earlier attempts, or why it was never enqueued. Raises JobNotFound for an
    unknown batch and BackendUnavailable when Redis cannot be reached."""
    ctx = context or get_context()
    keys = ctx.store.keys.batch(batch_id)
    try:
        if not ctx.redis.exists(keys.info):
            raise JobNotFound(f"batch {batch_id} does not exist")
        end = last_line(ctx, keys)
        for start in range(1, end + 1, chunk):
            fields = [str(number) for number in range(start, min(start + chunk, end + 1))]
            with ctx.redis.pipeline(transaction=False) as pipe:
                for key in (keys.lines, keys.invalid, keys.requests, keys.attempts):
                    pipe.hmget(key, fields)
                jobs, invalid, requests, attempts = pipe.execute()
            for index, number in enumerate(fields):
                if jobs[index] is None and invalid[index] is None:
                    continue  # not handled (yet)
                request = json.loads(requests[index]) if requests[index] else None
                yield BatchLine(
                    number=int(number),
                    request=request,
                    job_id=None if jobs[index] is None else str(jobs[index]),
                    earlier=str(attempts[index] or "").split(),
                    error=None if invalid[index] is None else str(invalid[index]),
                )
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
