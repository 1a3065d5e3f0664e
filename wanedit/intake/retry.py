"""`wanedit batch-retry`: send a batch's failed lines again, each as a new attempt.

Attempt k of a line (k >= 2) is enqueued under its own idempotency key, the first attempt's key
with `.a{k}` appended, so two runs (or two at once) that send the same line's attempt k make
one job. The line then names the new job only if it still names the job it was retried from
(a compare-and-set under WATCH): whichever run comes second finds it done.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from wanedit.errors import BackendUnavailable, InvalidRequest
from wanedit.intake.batch import keep
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.lines import BatchLine, batch_lines
from wanedit.intake.retry_rule import verdict
from wanedit.intake.submit import submit_edit
from wanedit.store.keys import BatchKeys

log = logging.getLogger("wanedit.producers")


@dataclass
class RetryReport:
    """What a retry did: lines sent again (line -> new job id) and lines left, by reason."""

    batch_id: str
    resent: dict[int, str] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    problems: dict[int, str] = field(default_factory=dict)  # line -> why it could not be sent

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "resent": len(self.resent),
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "jobs": {str(line): job for line, job in sorted(self.resent.items())},
            "problems": [
                {"line": line, "error": error} for line, error in sorted(self.problems.items())
            ],
        }


def attempt_key(first_key: str, attempt: int) -> str:
    """The idempotency key of a line's attempt `attempt` (1: the line's own key)."""
    return first_key if attempt <= 1 else f"{first_key}.a{attempt}"


def retry_batch(
    batch_id: str, *, all_failed: bool = False, context: ProducerContext | None = None
) -> dict[str, Any]:
    """Send again the lines whose latest attempt failed in a way a new attempt can change (with
    `all_failed`: every failed or canceled line). Safe to run twice or at once: a line's next
    attempt is one job. Returns counts: `resent`, `skipped` and `skipped_by_reason`, the new
    `jobs` by line and the lines that could not be sent (`problems`).
    Raises JobNotFound for an unknown batch, BackendUnavailable when Redis cannot be reached."""
    ctx = context or get_context()
    keys = ctx.store.keys.batch(batch_id)
    report = RetryReport(batch_id)
    output = str(ctx.redis.hget(keys.info, "output") or "") or None
    pending: list[BatchLine] = []
    try:
        for line in batch_lines(batch_id, context=ctx):
            if line.job_id is None:
                report.skipped["invalid line (fix the manifest and run it again)"] += 1
                continue
            pending.append(line)
            if len(pending) >= 500:
                _retry_chunk(ctx, keys, pending, output, all_failed, report)
                pending = []
        _retry_chunk(ctx, keys, pending, output, all_failed, report)
        keep(ctx, keys)
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None
    log.info(
        "batch %s: retry: %d lines sent again, %d left",
        batch_id,
        len(report.resent),
        sum(report.skipped.values()),
    )
    return report.as_dict()


def _retry_chunk(
    ctx: ProducerContext,
    keys: BatchKeys,
    lines: list[BatchLine],
    output: str | None,
    all_failed: bool,
    report: RetryReport,
) -> None:
    jobs = {job.id: job for job in ctx.store.get_many(line.job_id or "" for line in lines)}
    for line in lines:
        job = jobs.get(line.job_id or "")
        decided = verdict(
            None if job is None else job.status.value,
            None if job is None else job.error,
            all_failed=all_failed,
        )
        if not decided.resend or job is None:
            report.skipped[decided.reason] += 1
            continue
        first_key = str((job.request or {}).get("idempotency_key") or "")
        if line.earlier:
            first = ctx.store.get_many([line.earlier[0]])
            first_key = next(
                (str((j.request or {}).get("idempotency_key") or "") for j in first), first_key
            )
        attempt = line.attempts + 1
        request = dict(line.request or _as_sent(job.request or {}))
        fields = {
            **({"output": output} if output else {}),
            **request,
            "priority": "batch",
            "idempotency_key": attempt_key(
                first_key or f"batch-{report.batch_id}-{line.number}-unkeyed", attempt
            ),
        }
        try:
            new_job = submit_edit(fields, context=ctx)
        except InvalidRequest as exc:
            report.problems[line.number] = "; ".join(exc.problems)
            report.skipped["cannot be sent again (see problems)"] += 1
            continue
        if _move_line(ctx, keys, line.number, str(line.job_id), new_job):
            report.resent[line.number] = new_job
            log.info("batch line %d: attempt %d is job %s", line.number, attempt, new_job)
        else:
            report.skipped["sent again by another run"] += 1


def _as_sent(request: dict[str, Any]) -> dict[str, Any]:
    """A line whose request was not kept (enqueued by an earlier version): its job's request."""
    return {key: value for key, value in request.items() if key != "idempotency_key"}


def _move_line(
    ctx: ProducerContext, keys: BatchKeys, number: int, current: str, new_job: str
) -> bool:
    """Point the line at `new_job` if it still points at `current`; False when another run
    moved it first (or `new_job` is already the line's job)."""
    field_name = str(number)
    while True:
        with ctx.redis.pipeline() as pipe:
            try:
                pipe.watch(keys.lines, keys.attempts)
                if str(pipe.hget(keys.lines, field_name) or "") != current or current == new_job:
                    pipe.unwatch()
                    return False
                earlier = str(pipe.hget(keys.attempts, field_name) or "").split()
                pipe.multi()
                pipe.hset(keys.lines, field_name, new_job)
                pipe.hset(keys.attempts, field_name, " ".join([*earlier, current]))
                pipe.rpush(keys.jobs, new_job)
                pipe.execute()
                return True
            except redis.WatchError:
                continue
