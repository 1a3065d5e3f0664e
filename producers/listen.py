"""`wanedit listen`: storage event notifications in (SQS, a Redis list, HTTP), edits out.

The shell around producers.events_in: one notification body at a time is parsed, each planned
edit's object is checked with an S3 HEAD, then submitted with an idempotency key derived from
the event, so a redelivered notification returns the job it made before.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import redis

from wanedit.errors import BackendUnavailable, InvalidEvent, InvalidRequest
from wanedit.intake import submit_edit
from wanedit.intake.context import ProducerContext
from wanedit.producers.events_in import parse_events, plan_edits
from wanedit.s3errors import S3_EXCEPTIONS, S3Problem, classify_s3_error

log = logging.getLogger("wanedit.listen")


@dataclass
class Outcome:
    """What became of one notification: jobs made, or why it was dropped."""

    jobs: list[str]
    dropped: str | None = None


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
        return Outcome([], f"invalid notification: {exc}")
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


def _report(source: str, outcome: Outcome) -> None:
    if outcome.dropped:
        log.error("%s: dropped: %s", source, outcome.dropped)


def listen_sqs(
    ctx: ProducerContext, sqs: Any, queue_url: str, *, once: bool, wait_seconds: int = 20
) -> int:
    """Long-poll the queue; a message is deleted once its edits are enqueued (or it is
    dropped as invalid). With `once`, stop at the first empty receive. Returns jobs made."""
    made = 0
    while True:
        answer = sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=wait_seconds, MaxNumberOfMessages=10
        )
        messages = answer.get("Messages", [])
        if not messages and once:
            return made
        outage: BackendUnavailable | None = None
        for message in messages:
            source = f"sqs message {message['MessageId']}"
            try:
                outcome = handle(ctx, message["Body"])
            except BackendUnavailable as exc:
                # Not deleted: it comes back after the queue's visibility timeout.
                log.warning("%s: kept for redelivery: %s", source, exc)
                outage = exc
                continue
            _report(source, outcome)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            made += len(outcome.jobs)
        if outage is not None:
            if once:
                raise outage
            time.sleep(1)


def listen_redis_list(
    ctx: ProducerContext, client: redis.Redis, key: str, *, once: bool, wait_seconds: int = 20
) -> int:
    """Pop notifications (MinIO's `access` format) off a Redis list. Each is moved to
    `KEY:processing` while it is handled, so one taken by a listener that dies is not lost:
    it goes back to the list when the next listener starts. Returns jobs made."""
    try:
        return _drain(ctx, client, key, once, wait_seconds)
    except redis.RedisError as exc:
        raise BackendUnavailable(f"Redis cannot be reached: {exc}") from None


def _drain(
    ctx: ProducerContext, client: redis.Redis, key: str, once: bool, wait_seconds: int
) -> int:
    processing = f"{key}:processing"
    while client.lmove(processing, key, "RIGHT", "LEFT") is not None:
        pass
    made = 0
    while True:
        item: Any  # bytes or str, as the client decodes
        if once:
            item = client.lmove(key, processing, "LEFT", "RIGHT")
        else:
            item = client.blmove(key, processing, wait_seconds, "LEFT", "RIGHT")
        if item is None:
            if once:
                return made
            continue
        try:
            outcome = handle(ctx, item)
        except BackendUnavailable:
            with contextlib.suppress(redis.RedisError):
                client.lmove(processing, key, "RIGHT", "LEFT")
            raise
        _report(f"redis list {key}", outcome)
        client.lrem(processing, 1, item)
        made += len(outcome.jobs)


def http_server(
    ctx: ProducerContext, host: str, port: int, on_outcome: Callable[[Outcome], None]
) -> HTTPServer:
    """A webhook receiver: POST a notification; 200 with the job ids, 400 when it is invalid,
    401 without the WANEDIT_LISTEN_TOKEN bearer token, 503 when it should be sent again."""
    token = ctx.settings.listen_token

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if token is not None:
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
                    self._answer(401, {"error": "a valid bearer token is required"})
                    return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                outcome = handle(ctx, body)
            except BackendUnavailable as exc:
                self._answer(503, {"error": str(exc)})
                return
            _report(f"POST from {self.client_address[0]}", outcome)
            status = 400 if outcome.dropped and not outcome.jobs else 200
            self._answer(status, {"jobs": outcome.jobs, "dropped": outcome.dropped})
            on_outcome(outcome)

        def _answer(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return HTTPServer((host, port), Handler)
