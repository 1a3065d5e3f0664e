"""The one enqueue path: the Python API, the CLI, the listener, batches and the `wanedit.enqueue`
task all record and queue an edit through `submit_edit` or `enqueue_message`."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError

from wanedit.config.allow import check_request
from wanedit.config.celery import ADMIT_TASK
from wanedit.errors import BackendUnavailable, IdempotencyConflict, InvalidRequest
from wanedit.ids import is_job_id, new_job_id
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.staging import check_output, stage_images, staged_locations, unstage
from wanedit.request import EditRequest, parse_request, remote_problems
from wanedit.states import Status
from wanedit.storage import S3Location
from wanedit.store.jobs import NewJob

log = logging.getLogger("wanedit.producers")


def unavailable(exc: Exception) -> BackendUnavailable:
    return BackendUnavailable(f"Redis cannot be reached: {exc.__class__.__name__}: {exc}")


def submit_edit(
    request: EditRequest | dict[str, Any] | None = None,
    /,
    *,
    context: ProducerContext | None = None,
    trusted_files: Collection[str] = (),
    **fields: Any,
) -> str:
    """Validate, stage inputs, record and enqueue one edit; returns the job id.

    Local files are read only below WANEDIT_LOCAL_INPUT_DIRS. `trusted_files` are local files a
    person named to this process directly (the CLI's `--image`); they may lie anywhere.
    Raises InvalidRequest (nothing enqueued) or BackendUnavailable (nothing half-written).
    """
    if request is not None and fields:
        raise InvalidRequest(["request: give a request object or keyword fields, not both"])
    ctx = context or get_context()
    parsed = parse_request(request if request is not None else fields)
    trusted = {Path(name).expanduser().resolve() for name in trusted_files}
    return _enqueue(ctx, parsed, new_job_id(), trusted_files=trusted)


def enqueue_message(request: Any, job_id: Any, *, context: ProducerContext | None = None) -> str:
    """What the `wanedit.enqueue` task does for a backend in another language: `submit_edit`
    under the caller's job id, without local files. Returns the id of the job that stands
    (an idempotency key's earlier job, if the key was used before).

    Safe to run twice: a job id that exists already is left as it is. An invalid request is
    recorded as a failed job under that id (with a job.failed event), then InvalidRequest is
    raised; a malformed job id cannot be recorded and only raises.
    """
    if not is_job_id(job_id):
        raise InvalidRequest([f"job_id: {str(job_id)[:40]!r} is not 32 lowercase hex digits"])
    ctx = context or get_context()
    try:
        ctx.redis.ping()
        if ctx.store.exists(job_id):
            return str(job_id)  # a redelivered message, or an id used before: nothing to do
    except redis.RedisError as exc:
        raise unavailable(exc) from None
    try:
        if not isinstance(request, dict):
            raise InvalidRequest([f"request: must be a JSON object, not {type(request).__name__}"])
        parsed = parse_request(request)
        problems = remote_problems(parsed)
        if problems:
            raise InvalidRequest(problems)
        standing = _enqueue(ctx, parsed, job_id)
    except InvalidRequest as exc:
        # IdempotencyConflict is recorded under its own code.
        record_rejection(ctx, job_id, type(exc).__name__, str(exc))
        raise
    if standing != job_id:
        # The caller watches its own id: say there where the job is.
        record_rejection(
            ctx,
            job_id,
            "Duplicate",
            f"idempotency_key {parsed.idempotency_key!r} names job {standing}; "
            "nothing was enqueued under this id",
        )
    return standing


def record_rejection(ctx: ProducerContext, job_id: str, code: str, message: str) -> None:
    """Record a request that was never enqueued as a failed job, so a caller that chose the job
    id (and reads jobs or events, not task results) learns why."""
    try:
        created, _ = ctx.store.create(job_id, {}, "")
        if created:
            job = ctx.store.get(job_id)
            ctx.store.transition(job, Status.FAILED, {"error": {"code": code, "message": message}})
    except redis.RedisError as exc:
        raise unavailable(exc) from None
    log.error("job %s: refused: %s: %s", job_id, code, message)


def _enqueue(
    ctx: ProducerContext,
    parsed: EditRequest,
    job_id: str,
    *,
    trusted_files: Collection[Path] = (),
) -> str:
    output, fingerprint = _checked(ctx, parsed)
    try:
        # Fail before staging anything when Redis is away: nothing is left half-written.
        ctx.redis.ping()
        if parsed.idempotency_key:
            existing = ctx.store.find_idempotent(parsed.idempotency_key, fingerprint)
            if existing:
                return existing
    except redis.RedisError as exc:
        raise unavailable(exc) from None
    item = _staged(ctx, parsed, job_id, output, fingerprint, trusted_files)
    try:
        created, winner, conflict = ctx.store.create_many([item.job])[0]
    except redis.RedisError as exc:
        item.undo(ctx)
        raise unavailable(exc) from None
    outcome = _settle(ctx, item, created, winner, conflict)
    if isinstance(outcome, Exception):
        raise outcome
    if created:
        nudge(ctx)
    return outcome


@dataclass
class _Item:
    """A request checked and its inputs staged, ready to be recorded."""

    parsed: EditRequest
    job: NewJob
    sources: list[str]
    staging: S3Location

    def undo(self, ctx: ProducerContext) -> None:
        unstage(staged_locations(self.sources, self.staging, self.job.job_id), ctx.s3)


def _checked(ctx: ProducerContext, parsed: EditRequest) -> tuple[S3Location, str | None]:
    """The request's output after the allow-lists, and its fingerprint (with a key)."""
    output = (
        S3Location.parse_prefix(parsed.output) if parsed.output else ctx.settings.output_location
    )
    check_request(ctx.settings, parsed, output)  # buckets, task and queue: the allow-lists
    # The key names this edit: the same request returns its job, another one is refused.
    fingerprint = parsed.fingerprint(str(output)) if parsed.idempotency_key else None
    return output, fingerprint


def _staged(
    ctx: ProducerContext,
    parsed: EditRequest,
    job_id: str,
    output: S3Location,
    fingerprint: str | None,
    trusted_files: Collection[Path] = (),
) -> _Item:
    """Check the output, stage local and data: inputs and check the size as stored; raises
    InvalidRequest with nothing left behind."""
    staging = ctx.settings.staging_location(output)
    check_output(output, ctx.s3, ctx.known_buckets)
    sources = stage_images(
        parsed.images,
        job_id,
        staging,
        ctx.s3,
        input_dirs=ctx.settings.local_input_dirs,
        trusted_files=trusted_files,
    )
    stored = parsed.model_copy(update={"images": sources, "output": str(output)})
    record = stored.model_dump(mode="json")
    size = len(json.dumps(record, separators=(",", ":")).encode())
    if size > ctx.settings.max_request_bytes:
        unstage(staged_locations(sources, staging, job_id), ctx.s3)
        raise InvalidRequest(
            [
                f"request: {size} bytes as stored is over WANEDIT_MAX_REQUEST_BYTES "
                f"({ctx.settings.max_request_bytes}); pass large images as s3:// or https:// "
                "sources, or as local files and data: URIs, which are staged into S3"
            ]
        )
    job = NewJob(
        job_id,
        record,
        str(output),
        idempotency_key=parsed.idempotency_key,
        backlog=ctx.store.keys.backlog(parsed.priority),
        fingerprint=fingerprint,
    )
    return _Item(parsed, job, sources, staging)


def _settle(
    ctx: ProducerContext, item: _Item, created: bool, winner: str, conflict: bool
) -> str | IdempotencyConflict:
    """What the create script answered for one request: its job id, the job that stands, or
    the conflict to report (the request's staged inputs undone but for its own job's)."""
    if conflict:
        # Another request took the key first (a race the look before could not see).
        item.undo(ctx)
        return IdempotencyConflict(str(item.parsed.idempotency_key), winner)
    if not created:
        # Another request with the same key won the race: its job stands, ours is undone. (The
        # same job id won: a redelivered message, whose staged inputs are that job's own.)
        if winner != item.job.job_id:
            item.undo(ctx)
        return winner
    parsed = item.parsed
    log.info(
        "job %s: queued (%s, %d images, n=%d)", winner, parsed.priority, len(item.sources), parsed.n
    )
    return winner


# What ends a `submit_many` call as a whole: Redis or S3 away, a task's time limit.
_STOPS = (BackendUnavailable, redis.RedisError, SoftTimeLimitExceeded)


def submit_many(
    requests: Sequence[dict[str, Any]], *, context: ProducerContext | None = None
) -> list[str | Exception]:
    """`submit_edit` for many requests at once, with every per-request check, recorded in one
    atomic step: one Redis round trip to look up their idempotency keys and one create call.
    Returns, per request in order, its job id (or the one its idempotency key made before) or
    the exception that refused it alone (InvalidRequest, IdempotencyConflict, or whatever
    unforeseen broke that request); the others go on. Raises BackendUnavailable when Redis or
    S3 is away: then nothing of the call is recorded and its staged inputs are undone."""
    ctx = context or get_context()
    outcomes: list[str | Exception | None] = [None] * len(requests)
    checked: list[tuple[int, EditRequest, S3Location, str | None]] = []
    for index, request in enumerate(requests):
        try:
            parsed = parse_request(request)
            output, fingerprint = _checked(ctx, parsed)
        except _STOPS:
            raise
        except Exception as exc:  # one request's fault, reported for it alone
            outcomes[index] = exc
            continue
        checked.append((index, parsed, output, fingerprint))
    try:
        # Fails before staging anything when Redis is away: nothing is left half-written.
        keyed = [(p.idempotency_key, f) for _, p, _, f in checked if p.idempotency_key]
        earlier = iter(ctx.store.find_idempotent_many(keyed) if keyed else [])
        if not keyed:
            ctx.redis.ping()
    except redis.RedisError as exc:
        raise unavailable(exc) from None
    items: list[tuple[int, _Item]] = []
    try:
        for index, parsed, output, fingerprint in checked:
            if parsed.idempotency_key:
                existing, conflict = next(earlier)
                if existing and conflict:
                    outcomes[index] = IdempotencyConflict(parsed.idempotency_key, existing)
                    continue
                if existing:
                    outcomes[index] = existing
                    continue
            try:
                item = _staged(ctx, parsed, new_job_id(), output, fingerprint)
            except _STOPS:
                raise
            except Exception as exc:
                outcomes[index] = exc
                continue
            items.append((index, item))
        answers = ctx.store.create_many([item.job for _, item in items])
    except _STOPS as exc:
        for _, item in items:
            item.undo(ctx)
        if isinstance(exc, redis.RedisError):
            raise unavailable(exc) from None
        raise
    for (index, item), (created, winner, conflict) in zip(items, answers, strict=True):
        outcomes[index] = _settle(ctx, item, created, winner, conflict)
    if any(created for created, _, _ in answers):
        nudge(ctx)
    return [outcome if outcome is not None else RuntimeError("no outcome") for outcome in outcomes]


def nudge(ctx: ProducerContext) -> None:
    """Wake admission up. The job already waits in the backlog, so a lost nudge loses nothing:
    the workers' own admission ticks find it."""
    try:
        if ctx.admission.should_nudge():
            ctx.celery.send_task(ADMIT_TASK, queue=ctx.settings.queue)
    except (OperationalError, redis.RedisError, OSError) as exc:
        log.warning("admission nudge not sent (%s); the job waits for the next tick", exc)
