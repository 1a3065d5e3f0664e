"""How long a job lives, on a real Redis with a moved clock: a long wait in the backlog spends
none of its deadlines, its record never expires before it ends, and a record that goes anyway
ends the job with one `job.failed` event."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.worker_app import workers_sending_to
from wanedit.config.celery import SUBMIT_TASK
from wanedit.config.clients import make_redis
from wanedit.config.settings import load_settings
from wanedit.states import Status
from wanedit.store.admission import Admission
from wanedit.store.events import read_events
from wanedit.store.jobs import JobStore
from wanedit.store.record import Job
from wanedit.workers.client import ProviderClient, make_session
from wanedit.workers.context import WorkerContext
from wanedit.workers.steps.common import Delivery, RetryLater
from wanedit.workers.steps.submit import submit
from wanedit.workers.steps.sweep import sweep

pytestmark = pytest.mark.integration
HOUR = 3600.0
RETENTION = 2 * 86400
OUTPUT = "s3://wanedit-life/out/"  # the configured output: allowed without an allow-list


@contextmanager
def provider_answering(status: int, code: str) -> Iterator[tuple[str, list[str]]]:
    """A provider whose every call is answered with this error; yields its base URL and the
    paths called."""
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            calls.append(self.path)
            body = json.dumps({"request_id": "r1", "code": code, "message": "try later"}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1", calls
    finally:
        server.shutdown()
        server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def make_context(redis_url: str, provider_url: str = "http://127.0.0.1:9/api/v1") -> WorkerContext:
    prefix = f"life-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        redis_url=redis_url,
        output_uri=OUTPUT,
        key_prefix=prefix,
        queue=prefix,
        events_stream=f"{prefix}:events",
        job_ttl_seconds=RETENTION,
        retry_base=0.2,
        retry_cap=1.0,
        http_connect_timeout=1.0,
        http_read_timeout=2.0,
    )
    client = make_redis(settings)
    clock = Clock()
    account = settings.accounts[0]
    return WorkerContext(
        settings=settings,
        redis=client,
        store=JobStore(
            client,
            key_prefix=prefix,
            events_stream=settings.events_stream,
            events_maxlen=1000,
            ttl_seconds=settings.job_ttl_seconds,
            clock=clock,
        ),
        admission=Admission(
            client,
            key_prefix=prefix,
            accounts=settings.accounts,
            lease_seconds=settings.slot_lease_seconds,
            batch_max_wait=settings.batch_max_wait,
            daily_image_cap=0,
            clock=clock,
        ),
        providers={account.name: ProviderClient(make_session(), provider_url, "sk-test")},
        s3=None,
        downloads=make_session(),
        clock=clock,
        rand=lambda: 0.5,
    )


@pytest.fixture
def ctx(redis_url: str) -> Iterator[WorkerContext]:
    context = make_context(redis_url)
    with workers_sending_to(context.settings):
        yield context
    clean(context)


def clean(ctx: WorkerContext) -> None:
    for key in ctx.redis.scan_iter(f"{ctx.settings.key_prefix}*"):
        ctx.redis.delete(key)


def enqueue(ctx: WorkerContext, key: str | None = None) -> str:
    job_id = uuid.uuid4().hex
    request = {"prompt": "p", "images": ["https://example.com/in.png"], "priority": "batch"}
    created, _ = ctx.store.create(
        job_id,
        request,
        OUTPUT,
        idempotency_key=key,
        backlog=ctx.store.keys.backlog("batch"),
    )
    assert created
    return job_id


def advance(ctx: WorkerContext, seconds: float) -> None:
    ctx.clock.now += seconds  # type: ignore[attr-defined]


def failed_events(ctx: WorkerContext) -> list[dict]:
    return [
        event
        for _, event in read_events(ctx.redis, ctx.settings.events_stream)
        if event["type"] == "job.failed"
    ]


def waited_past_the_deadline_then_created(ctx: WorkerContext) -> tuple[RetryLater | None, Job]:
    job_id = enqueue(ctx)
    # A long batch ahead of it: it waits longer than the poll deadline for a slot.
    advance(ctx, ctx.settings.poll_deadline + HOUR)
    [admitted] = ctx.admission.admit().admitted
    later = submit(ctx, job_id, admitted.account, Delivery(SUBMIT_TASK, "m1", 0))
    return later, ctx.store.get(job_id)


@pytest.mark.parametrize(("status", "code"), [(429, "Throttling.RateQuota"), (429, "Throttling")])
def test_a_job_that_waited_past_the_poll_deadline_in_the_backlog_is_retried_at_create(
    redis_url: str, status: int, code: str
) -> None:
    with provider_answering(status, code) as (url, calls):
        ctx = make_context(redis_url, url)
        try:
            later, job = waited_past_the_deadline_then_created(ctx)
        finally:
            clean(ctx)
    assert len(calls) == 1  # the create was sent, and answered with an error
    assert job.error is None, job.error
    assert job.status is Status.QUEUED
    assert isinstance(later, RetryLater), "the create was not retried"


def test_a_job_that_waited_past_the_poll_deadline_is_retried_when_the_provider_is_away(
    redis_url: str,
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
    ctx = make_context(redis_url, f"http://127.0.0.1:{closed.getsockname()[1]}/api/v1")
    try:
        later, job = waited_past_the_deadline_then_created(ctx)
    finally:
        clean(ctx)
        closed.close()
    assert job.error is None, job.error
    assert isinstance(later, RetryLater), "the create was not retried"


def test_a_queued_job_never_expires_and_its_retention_starts_when_it_ends(ctx) -> None:
    job_id = enqueue(ctx, key="order-17")
    job_key, key_key = ctx.store.keys.job(job_id), ctx.store.keys.idempotency("order-17")
    # Weeks in the backlog, admitted, given back, changed: never an expiry.
    advance(ctx, 30 * 86400)
    ctx.admission.admit()
    job = ctx.store.get(job_id)
    ctx.store.update(job, {"polls": 0}, while_in=[Status.QUEUED])
    assert (ctx.redis.ttl(job_key), ctx.redis.ttl(key_key)) == (-1, -1)
    # A record written by an older version had an expiry: its next write takes it off.
    ctx.redis.expire(job_key, 60)
    ctx.redis.expire(key_key, 60)
    ctx.store.update(job, {"polls": 0}, while_in=[Status.QUEUED])
    assert (ctx.redis.ttl(job_key), ctx.redis.ttl(key_key)) == (-1, -1)

    error = {"code": "X", "message": "m"}
    assert ctx.store.transition(job, Status.FAILED, {"error": error})
    assert RETENTION - 5 < ctx.redis.ttl(job_key) <= RETENTION
    assert RETENTION - 5 < ctx.redis.ttl(key_key) <= RETENTION
    # A later write to the ended job (a webhook attempt, a late cancel) keeps the clock running.
    ctx.redis.expire(job_key, 100)
    ctx.store.update(ctx.store.get(job_id), {"cancel_requested": True}, while_in=None)
    assert 0 < ctx.redis.ttl(job_key) <= 100


def test_a_job_whose_record_is_deleted_in_the_backlog_fails_with_one_event(ctx) -> None:
    gone, kept = enqueue(ctx), enqueue(ctx)
    ctx.redis.delete(ctx.store.keys.job(gone))
    for _ in range(2):
        ctx.admission.admit()
        sweep(ctx)
        ctx.redis.delete(ctx.store.keys.sweep_lock)  # the next interval's sweep
    [event] = failed_events(ctx)
    assert event["job_id"] == gone
    assert event["error"]["code"] == "JobRecordLost"
    assert "record was gone" in event["error"]["message"]
    job = ctx.store.get(gone)
    assert job.status is Status.FAILED and job.error == event["error"]
    assert 0 < ctx.redis.ttl(ctx.store.keys.job(gone)) <= RETENTION
    assert ctx.store.get(kept).status is Status.QUEUED


def test_an_active_job_whose_record_is_deleted_fails_with_one_event_from_the_sweeper(ctx) -> None:
    job_id = enqueue(ctx)
    ctx.store.set_due(job_id, ctx.clock() - 3600)
    ctx.redis.delete(ctx.store.keys.job(job_id))
    # A stray write after the record went leaves a few fields and no status.
    ctx.redis.hset(ctx.store.keys.job(job_id), "settled", "1")
    for _ in range(2):
        sweep(ctx)
        ctx.redis.delete(ctx.store.keys.sweep_lock)
    [event] = failed_events(ctx)
    assert (event["job_id"], event["error"]["code"]) == (job_id, "JobRecordLost")
    assert ctx.store.due_at(job_id) is None
