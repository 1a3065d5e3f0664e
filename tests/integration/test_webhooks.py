"""Webhook delivery on real parts: Redis job records and an HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from tests.receiver import (
    GARBLED_BODIES,
    hang_up_mid_body,
    probe_server,
    raw_server,
    stream_body,
    webhook_receiver,
)
from wanedit.config.clients import make_admission, make_redis, make_store
from wanedit.config.settings import Settings, load_settings
from wanedit.states import Status
from wanedit.store.events import read_events
from wanedit.webhooks import ANSWER_MAX
from wanedit.workers.client import make_session
from wanedit.workers.context import WorkerContext
from wanedit.workers.steps.deliver import run_delivery

pytestmark = pytest.mark.integration
SECRET = "whsec_" + base64.b64encode(b"integration-test-webhook-key-32b").decode()


def make_context(redis_url: str, **overrides: object) -> WorkerContext:
    prefix = f"hooks-{uuid.uuid4().hex[:8]}"
    values: dict[str, object] = {
        "redis_url": redis_url,
        "key_prefix": prefix,
        "events_stream": f"{prefix}:events",
        "webhook_secret": SECRET,
        "allow_private_urls": True,
        "retry_base": 0.2,
        "retry_cap": 1.0,
        "http_connect_timeout": 1.0,
        "http_read_timeout": 2.0,
    }
    settings: Settings = load_settings(**{**values, **overrides})
    client = make_redis(settings)
    return WorkerContext(
        settings=settings,
        redis=client,
        store=make_store(settings, client),
        admission=make_admission(settings, client),
        providers={},
        s3=None,
        downloads=make_session(),
        rand=lambda: 0.5,
    )


@pytest.fixture
def ctx(redis_url: str) -> Iterator[WorkerContext]:
    context = make_context(redis_url)
    yield context
    for key in context.redis.scan_iter(f"{context.settings.key_prefix}*"):
        context.redis.delete(key)


def ended_job(ctx: WorkerContext, request: dict[str, object]) -> str:
    """A job that has just failed, as a worker would leave it."""
    job_id = uuid.uuid4().hex
    ctx.store.create(job_id, {"prompt": "p", "images": [], **request}, "s3://b/p/")
    job = ctx.store.get(job_id)
    error = {"code": "InvalidParameter", "message": "bad"}
    assert ctx.store.transition(job, Status.FAILED, {"error": error})
    return job_id


def test_the_terminal_transition_records_what_is_owed_in_the_same_step(ctx):
    job_id = ended_job(ctx, {"callback_url": "http://127.0.0.1:9/h", "on_complete": "a.b"})
    job = ctx.store.get(job_id)

    assert job.webhook_status == "pending" and job.on_complete_status == "pending"
    assert job.callbacks == {
        "webhook_url": "http://127.0.0.1:9/h",
        "on_complete": "a.b",
        "on_complete_queue": "celery",
    }
    [(_, event)] = list(read_events(ctx.redis, ctx.settings.events_stream))
    assert job.event is not None and event == json.loads(job.event)
    assert ctx.store.callbacks_overdue(ctx.clock() + 1, 10) == [job_id]

    quiet = ended_job(ctx, {})
    assert ctx.store.get(quiet).webhook_status is None
    assert ctx.store.callbacks_overdue(ctx.clock() + 1, 10) == [job_id]


def test_a_receiver_failing_twice_gets_the_same_signed_event_three_times(ctx):
    with webhook_receiver([500, 500]) as receiver:
        job_id = ended_job(ctx, {"callback_url": receiver.url})
        delays = [run_delivery(ctx, job_id, attempt) for attempt in range(3)]
        # A redelivered copy of an attempt already made sends nothing.
        assert run_delivery(ctx, job_id, 1) is None

    assert delays[0] is not None and 0.1 <= delays[0] <= 0.2
    assert delays[1] is not None and 0.2 <= delays[1] <= 0.4
    assert delays[2] is None
    assert len(receiver.received) == 3
    [(_, event)] = list(read_events(ctx.redis, ctx.settings.events_stream))
    for got in receiver.received:
        assert Webhook(SECRET).verify(got.body, got.headers) == event
        assert got.headers["webhook-id"] == f"{job_id}:job.failed"
    job = ctx.store.get(job_id)
    assert job.webhook_status == "delivered"
    assert [a["status_code"] for a in job.webhook_attempts] == [500, 500, 200]
    assert [a["error"] for a in job.webhook_attempts] == ["HTTP 500", "HTTP 500", None]
    assert all(a["at"] and a["duration"] >= 0 for a in job.webhook_attempts)
    assert ctx.store.callbacks_overdue(ctx.clock() + 3600, 10) == []


def test_a_private_callback_url_is_refused_and_never_sent(redis_url):
    ctx = make_context(redis_url, allow_private_urls=False)
    with webhook_receiver() as receiver:
        job_id = ended_job(ctx, {"callback_url": receiver.url})
        assert run_delivery(ctx, job_id, 0) is None

    assert receiver.received == []
    job = ctx.store.get(job_id)
    assert job.webhook_status == "failed"
    [attempt] = job.webhook_attempts
    assert attempt["status_code"] is None
    assert "refused" in attempt["error"] and "loopback address" in attempt["error"]
    assert ctx.store.callbacks_overdue(ctx.clock() + 3600, 10) == []


def test_connection_errors_are_retried_until_the_deadline(redis_url):
    ctx = make_context(redis_url, webhook_deadline=0.5)
    with socket.socket() as sock:  # a port that refuses connections
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/h"
    job_id = ended_job(ctx, {"callback_url": url})

    delay = run_delivery(ctx, job_id, 0)
    assert delay is not None
    job = ctx.store.get(job_id)
    assert job.webhook_status == "pending"
    assert job.webhook_attempts[0]["error"].startswith("ConnectionError")
    assert ctx.store.callbacks_overdue(ctx.clock() + delay + 0.01, 10) == [job_id]

    ctx.clock = lambda: job.timestamps["failed"] + 1.0  # past the delivery deadline
    assert run_delivery(ctx, job_id, 1) is None
    job = ctx.store.get(job_id)
    assert job.webhook_status == "failed"
    assert len(job.webhook_attempts) == 2
    assert job.webhook_attempts[1]["error"].endswith("gave up at the delivery deadline")
    assert ctx.store.callbacks_overdue(ctx.clock() + 3600, 10) == []


def test_the_secret_is_not_in_the_job_record(ctx):
    with webhook_receiver() as receiver:
        job_id = ended_job(ctx, {"callback_url": receiver.url})
        run_delivery(ctx, job_id, 0)
    stored = str(ctx.redis.hgetall(ctx.store.keys.job(job_id)))
    assert SECRET not in stored and SECRET.removeprefix("whsec_") not in stored


def test_a_callback_url_spelled_to_fool_the_guard_is_never_posted_to(redis_url):
    """A stored callback URL read as host 8.8.8.8 by urlsplit but 127.0.0.1 by urllib3."""
    ctx = make_context(redis_url, allow_private_urls=False)
    with probe_server() as probe:
        job_id = ended_job(ctx, {"callback_url": f"{probe.base}\\@8.8.8.8/h"})
        assert run_delivery(ctx, job_id, 0) is None
    assert probe.hits == []
    job = ctx.store.get(job_id)
    assert job.webhook_status == "failed"
    [attempt] = job.webhook_attempts
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("UrlNotAllowed: refused to send to ")
    assert "backslash" in attempt["error"]


def test_a_webhook_goes_to_the_checked_address_never_to_a_second_answer(redis_url):
    """`localhost` is checked at a public address, then rebinds to 127.0.0.1: the POST goes
    to the checked address (unreachable here) and the internal service sees nothing."""
    ctx = make_context(redis_url, allow_private_urls=False, http_connect_timeout=0.5)
    answers = iter(["8.8.8.8"])
    calls: list[str] = []

    def rebinding(host: str, port: int, **_: object) -> list[tuple]:
        calls.append(host)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    ctx.resolve = rebinding
    with probe_server() as probe:
        job_id = ended_job(ctx, {"callback_url": f"http://localhost:{probe.port}/h"})
        assert run_delivery(ctx, job_id, 0) is not None  # a connection error: tried again
    assert probe.hits == []
    assert calls == ["localhost"]
    [attempt] = ctx.store.get(job_id).webhook_attempts
    assert attempt["status_code"] is None and "8.8.8.8" in attempt["error"]


def test_a_webhook_answer_is_read_no_further_than_the_cap(ctx):
    """A receiver that answers 200 with 400 MiB, generated as it is sent."""
    total = 400 * 1024 * 1024
    with raw_server(lambda c, s: stream_body(c, s, b"{}", total)) as receiver:
        job_id = ended_job(ctx, {"callback_url": f"{receiver.url}/h"})
        assert run_delivery(ctx, job_id, 0) is None
    assert ctx.store.get(job_id).webhook_status == "delivered"
    [sent] = receiver.sent
    # The worker read at most ANSWER_MAX; the rest of what was sent sat in socket buffers.
    assert sent < ANSWER_MAX + 32 * 1024 * 1024 < total


@pytest.mark.parametrize("how", GARBLED_BODIES)
def test_a_webhook_answer_cut_short_still_counts_its_status(ctx, how):
    with raw_server(hang_up_mid_body(how, b'{"ok"')) as receiver:
        job_id = ended_job(ctx, {"callback_url": f"{receiver.url}/h"})
        assert run_delivery(ctx, job_id, 0) is None
    job = ctx.store.get(job_id)
    assert job.webhook_status == "delivered"
    assert [a["status_code"] for a in job.webhook_attempts] == [200]


def test_an_on_complete_task_not_allowed_is_never_sent(ctx):
    """A record naming a task past intake (WANEDIT_ON_COMPLETE_TASKS is empty here): refused,
    logged, and the webhook is paid as ever."""
    with webhook_receiver() as receiver:
        job_id = ended_job(ctx, {"callback_url": receiver.url, "on_complete": "evil.tasks.run"})
        assert run_delivery(ctx, job_id, 0) is None
    job = ctx.store.get(job_id)
    assert job.on_complete_status == "refused"
    assert job.webhook_status == "delivered"
    assert len(receiver.received) == 1
