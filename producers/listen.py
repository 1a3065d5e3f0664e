"""`wanedit listen`: storage event notifications in (SQS, a Redis list, HTTP), edits out.

The shell around producers.events_in: one notification body at a time is parsed, each planned
edit's object is checked with an S3 HEAD, then submitted with an idempotency key derived from
the event, so a redelivered notification returns the job it made before.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from botocore.exceptions import BotoCoreError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from wanedit.errors import BackendUnavailable, InvalidEvent, InvalidRequest
from wanedit.intake import submit_edit
from wanedit.intake.context import ProducerContext
from wanedit.producers.events_in import parse_events, plan_edits
from wanedit.producers.http_server import (
    HTTP_BODY_MAX as HTTP_BODY_MAX,
)
from wanedit.producers.http_server import (
    HTTP_CONNECTIONS_MAX,
    HTTP_IDLE_TIMEOUT,
    HTTP_REQUEST_DEADLINE,
    BodyProblem,
    answer,
    read_body,
    serve,
)
from wanedit.s3errors import S3_EXCEPTIONS, S3Problem, classify_s3_error
from wanedit.store.keys import Keys

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger("wanedit.listen")


@dataclass
class Outcome:
    """What became of one notification: jobs made, or why it was dropped. `malformed`: it can
    never be handled (unreadable, or it broke the handling), so a listener sets it aside."""

    jobs: list[str]
    dropped: str | None = None
    malformed: bool = False


def _exists(ctx: ProducerContext, bucket: str, key: str) -> bool:
    """Whether the uploaded object is still there; InvalidRequest when it can never be read."""
    try:
        ctx.s3.head_object(Bucket=bucket, Key=key)
    except S3_EXCEPTIONS as exc:
        failure = classify_s3_error(exc)
        if failure.problem is S3Problem.MISSING:
            return False
        subject = f"s3://{bucket}/{key}"
        if not failure.request_fault:
            raise BackendUnavailable(failure.describe(subject)) from None
        raise InvalidRequest([failure.describe(subject)]) from None
    return True


def handle(ctx: ProducerContext, body: str | bytes) -> Outcome:
    """Enqueue the edits of one notification. Raises BackendUnavailable when it should be
    delivered again later; a notification that can never work comes back as dropped."""
    try:
        events = parse_events(body)
    except InvalidEvent as exc:
        return Outcome([], f"invalid notification: {exc}", malformed=True)
    jobs, problems = [], []
    for edit in plan_edits(events, ctx.settings.listen_rules):
        event = edit.event
        try:
            if not _exists(ctx, event.bucket, event.key):
                log.info("%s: gone before its edit was enqueued; skipped", event.source)
                continue
            job_id = submit_edit(edit.request, context=ctx)
        except InvalidRequest as exc:
            problems.append(f"{event.source}: {exc}")
            continue
        log.info("job %s: from %s (%s)", job_id, event.source, event.name)
        jobs.append(job_id)
    return Outcome(jobs, "; ".join(problems) or None)


def handle_safely(ctx: ProducerContext, body: str | bytes) -> Outcome:
    """`handle`, where a notification that breaks the handling in an unforeseen way comes back
    as malformed (the listener goes on with the next one) and Redis, S3 or SQS being away as
    BackendUnavailable."""
    try:
        return handle(ctx, body)
    except BackendUnavailable:
        raise
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {type(exc).__name__}") from None
    except BotoCoreError as exc:
        raise BackendUnavailable(f"S3 cannot be reached: {type(exc).__name__}") from None
    except Exception as exc:
        # One bad notification must not stop the listener. Its reason names the error's type
        # and message only: never the body, which is the sender's.
        reason = f"could not be handled ({type(exc).__name__}: {str(exc)[:200]})"
        return Outcome([], reason, malformed=True)


def _report(source: str, outcome: Outcome, set_aside: str = "") -> None:
    if outcome.dropped:
        log.error("%s: dropped: %s%s", source, outcome.dropped, set_aside)


# While Redis, S3 or the queue is down, a listener waits 1 s, 2 s, 4 s ... up to this long and
# tries again; with --once it gives up at the first outage, so a script sees exit status 3.
OUTAGE_WAIT_MAX = 60.0


def _log_outage(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("listener: %s; trying again in %.0f s", error, wait)


def outages(once: bool, sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """The listeners' retry policy: BackendUnavailable is waited out with exponential
    backoff (never, with `once`); any other error ends the listener."""
    return Retrying(
        retry=retry_if_exception_type(BackendUnavailable),
        wait=wait_exponential(multiplier=1, max=OUTAGE_WAIT_MAX),
        stop=stop_after_attempt(1) if once else stop_never,
        before_sleep=_log_outage,
        sleep=sleep,
        reraise=True,
    )


@dataclass
class _Made:
    """Jobs made so far, kept across the rounds an outage interrupts."""

    jobs: int = 0


def listen_sqs(
    ctx: ProducerContext,
    sqs: Any,
    queue_url: str,
    *,
    once: bool,
    wait_seconds: int = 20,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Long-poll the queue; a message is deleted once its edits are enqueued (or it is
    dropped as invalid). With `once`, stop at the first empty receive. Returns jobs made."""
    made = _Made()
    retrying = outages(once, sleep)
    while True:
        # Each call starts the backoff afresh: one good round ends an outage.
        empty = retrying(_sqs_round, ctx, sqs, queue_url, wait_seconds, made)
        if empty and once:
            return made.jobs


def _sqs_round(
    ctx: ProducerContext, sqs: Any, queue_url: str, wait_seconds: int, made: _Made
) -> bool:
    """Receive once and handle what came; raises BackendUnavailable after the round when a
    message had to be kept. Returns whether the receive was empty."""
    try:
        answer = sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=wait_seconds, MaxNumberOfMessages=10
        )
    except BotoCoreError as exc:  # no answer at all; a ClientError (no such queue) ends it
        raise BackendUnavailable(f"SQS cannot be reached: {exc}") from None
    messages = answer.get("Messages", [])
    outage: BackendUnavailable | None = None
    for message in messages:
        source = f"sqs message {message.get('MessageId')}"
        try:
            # A malformed one is deleted and logged (with its id, not its body): give the
            # queue a redrive policy to keep such bodies in a dead-letter queue instead.
            outcome = handle_safely(ctx, message.get("Body", ""))
        except BackendUnavailable as exc:
            # Not deleted: it comes back after the queue's visibility timeout.
            log.warning("%s: kept for redelivery: %s", source, exc)
            outage = exc
            continue
        _report(source, outcome)
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        made.jobs += len(outcome.jobs)
    if outage is not None:
        raise outage
    return not messages


def listen_redis_list(
    ctx: ProducerContext,
    client: redis.Redis,
    key: str,
    *,
    once: bool,
    wait_seconds: int = 20,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Pop notifications (MinIO's `access` format) off a Redis list. Each is moved to
    `KEY:processing` while it is handled, so one taken by a listener that dies is not lost:
    it goes back to the list when the next listener starts, or when this one starts over
    after an outage. One that can never be handled is moved to the dead-letter list
    `<prefix>:listen-dead:KEY` instead. Returns jobs made."""
    made = _Made()
    raw = _bytes_client(client)
    outages(once, sleep)(_drain_list, ctx, raw, key, once, wait_seconds, made)
    return made.jobs


def _bytes_client(client: redis.Redis) -> redis.Redis:
    """The same Redis, answering bytes: a notification that is not UTF-8 must reach the
    parser (and the dead-letter list) as it is, not fail inside the client."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return redis.Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs))


# The newest notifications kept on a dead-letter list: a flood of bad ones cannot fill Redis.
DEAD_LETTERS_MAX = 10_000


def _drain_list(
    ctx: ProducerContext, client: redis.Redis, key: str, once: bool, wait_seconds: int, made: _Made
) -> None:
    try:
        _drain(ctx, client, key, once, wait_seconds, made)
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None


def _drain(
    ctx: ProducerContext, client: redis.Redis, key: str, once: bool, wait_seconds: int, made: _Made
) -> None:
    keys = Keys(ctx.settings.key_prefix)
    processing, dead = keys.listen_processing(key), keys.listen_dead(key)
    while client.lmove(processing, key, "RIGHT", "LEFT") is not None:
        pass
    while True:
        item: Any  # bytes or str, as the client decodes
        if once:
            item = client.lmove(key, processing, "LEFT", "RIGHT")
        else:
            item = client.blmove(key, processing, wait_seconds, "LEFT", "RIGHT")
        if item is None:
            if once:
                return
            continue
        try:
            outcome = handle_safely(ctx, item)
        except BackendUnavailable:
            with contextlib.suppress(redis.RedisError):
                client.lmove(processing, key, "RIGHT", "LEFT")
            raise
        if outcome.malformed:
            _report(f"redis list {key}", outcome, f"; set aside in {dead}")
            with client.pipeline(transaction=True) as pipe:
                pipe.lrem(processing, 1, item)
                pipe.rpush(dead, item)
                pipe.ltrim(dead, -DEAD_LETTERS_MAX, -1)
                pipe.execute()
            continue
        _report(f"redis list {key}", outcome)
        client.lrem(processing, 1, item)
        made.jobs += len(outcome.jobs)


def receiver(ctx: ProducerContext, on_outcome: Callable[[Outcome], None]) -> WSGIApplication:
    """The webhook receiver as a WSGI application: POST a notification; 200 with the job ids,
    400 when it is invalid (naming the field), 401 without the WANEDIT_LISTEN_TOKEN bearer
    token, 408 when the body is too slow, 413 when it is too large, 503 when it should be sent
    again."""
    token = ctx.settings.listen_token

    @Request.application
    def application(request: Request) -> Response:
        if request.method != "POST":
            return answer(405, {"error": "POST a notification"}, allow="POST")
        if token is not None:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
                return answer(401, {"error": "a valid bearer token is required"})
        try:
            body = read_body(request)
        except BodyProblem as problem:
            return problem.response
        try:
            outcome = handle_safely(ctx, body)
        except BackendUnavailable as exc:
            return answer(503, {"error": str(exc)})
        _report(f"POST from {request.remote_addr}", outcome)
        on_outcome(outcome)
        status = 400 if outcome.dropped and not outcome.jobs else 200
        return answer(status, {"jobs": outcome.jobs, "dropped": outcome.dropped})

    return application


def http_server(
    ctx: ProducerContext,
    host: str,
    port: int,
    on_outcome: Callable[[Outcome], None],
    *,
    idle_timeout: float = HTTP_IDLE_TIMEOUT,
    request_deadline: float = HTTP_REQUEST_DEADLINE,
    connections: int = HTTP_CONNECTIONS_MAX,
) -> BaseWSGIServer:
    """The threaded server around `receiver`, bound and listening. `on_outcome` is called
    from the connections' threads."""
    return serve(
        host,
        port,
        receiver(ctx, on_outcome),
        idle_timeout=idle_timeout,
        request_deadline=request_deadline,
        connections=connections,
        logger=log,
    )
