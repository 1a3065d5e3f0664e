"""`wanedit provider-events` over real HTTP with a real Redis: only an authorised, well-formed
event for a task of ours sends a query (one per event id), and no body, client or event stops
the receiver serving the others."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from wanedit.config.settings import load_settings
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers.provider_events import http_server
from wanedit.store.keys import Keys

pytestmark = pytest.mark.integration

TOKEN = "receiver-token"


@pytest.fixture
def ctx(redis_url: str, run_id: str) -> Iterator[ProducerContext]:
    tag = f"pev-{run_id}-{uuid.uuid4().hex[:6]}"
    settings = load_settings(
        redis_url=redis_url,
        key_prefix=tag,
        queue=tag,
        events_stream=f"{tag}:events",
        dashscope_api_key="sk-test",
        provider_events_token=TOKEN,
    )
    context = build_context(settings)
    yield context
    for key in context.redis.scan_iter(f"{tag}*"):
        context.redis.delete(key)


@pytest.fixture
def server(ctx: ProducerContext) -> Iterator[Any]:
    running = http_server(ctx, "127.0.0.1", 0, idle_timeout=30.0, request_deadline=30.0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def url(server: Any, token: str | None = TOKEN) -> str:
    base = f"http://127.0.0.1:{server.server_port}/events"
    return base if token is None else f"{base}?token={token}"


def sent(ctx: ProducerContext) -> list[list[Any]]:
    """The poll messages the receiver put on the worker queue (no worker takes them here)."""
    found = []
    for raw in ctx.redis.lrange(ctx.settings.queue, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "wanedit.poll"
        found.append(message["headers"]["argsrepr"])
    return found


def owned_job(ctx: ProducerContext, task_id: str) -> str:
    """A job whose provider task `task_id` was created and recorded, as a worker does it."""
    job_id = uuid.uuid4().hex
    ctx.store.create(job_id, {"prompt": "p", "images": ["s3://b/in.png"]}, "s3://b/out/")
    job = ctx.store.get(job_id)
    ctx.store.record_task(job, task_id, {"provider_status": "PENDING"}, due=time.time() + 60)
    account = ctx.settings.accounts[0].name
    ctx.redis.hset(ctx.store.keys.provider_tasks(account), task_id, job_id)
    return job_id


def event(task_id: str, event_id: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "id": event_id or uuid.uuid4().hex,
        "source": "acs.dashscope",
        "type": "dashscope:System:AsyncTaskFinish",
        "specversion": "1.0",
        "data": {"task_id": task_id, "task_status": "SUCCEEDED", "contain_result": False, **data},
    }


def counted(ctx: ProducerContext) -> dict[str, float]:
    raw = ctx.redis.hgetall(Keys(ctx.settings.key_prefix).metrics)
    prefix = "provider_events_total|outcome="
    return {k.removeprefix(prefix): float(v) for k, v in raw.items() if k.startswith(prefix)}


def test_an_event_for_our_task_sends_one_query_for_its_job(ctx, server):
    job_id = owned_job(ctx, "task-ours")
    answer = requests.post(url(server), json=event("task-ours"), timeout=5)
    assert answer.status_code == 202
    assert answer.json() == {"outcome": "polled"}
    assert sent(ctx) == [repr([job_id, False, False])]
    # The event's status is not trusted: only the query that was sent moves the job.
    assert ctx.store.get(job_id).status.value == "submitted"
    assert counted(ctx) == {"polled": 1.0}


@pytest.mark.parametrize(
    ("token", "header"),
    [(None, None), ("wrong", None), (None, "Bearer wrong"), (None, "Basic " + TOKEN)],
)
def test_a_wrong_or_missing_token_is_refused_and_sends_nothing(ctx, server, token, header):
    owned_job(ctx, "task-t")
    headers = {"Authorization": header} if header else {}
    answer = requests.post(url(server, token), json=event("task-t"), headers=headers, timeout=5)
    assert answer.status_code == 401
    assert sent(ctx) == []
    assert counted(ctx) == {"unauthorized": 1.0}


def test_the_token_may_come_as_a_bearer_header(ctx, server):
    owned_job(ctx, "task-b")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = requests.post(url(server, None), json=event("task-b"), headers=headers, timeout=5)
    assert answer.status_code == 202
    assert len(sent(ctx)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body: not JSON"),
        (json.dumps({"id": "e", "source": "acs.dashscope"}).encode(), "type: must be"),
        (json.dumps(event("x") | {"data": []}).encode(), "data: must be a JSON object"),
        (json.dumps(event("a/../b")).encode(), "data.task_id: must be 1 to 128"),
        (b"[" * 200_000, "body: not JSON"),
    ],
)
def test_a_malformed_event_is_answered_400_naming_its_field(ctx, server, body, field):
    owned_job(ctx, "task-m")
    answer = requests.post(url(server), data=body, timeout=5)
    assert answer.status_code == 400
    assert field in answer.json()["error"]
    assert sent(ctx) == []
    assert requests.get(f"http://127.0.0.1:{server.server_port}/healthz", timeout=5).ok


def test_an_unknown_task_changes_nothing_and_is_counted(ctx, server):
    job_id = owned_job(ctx, "task-mine")
    before = ctx.store.get(job_id)
    answer = requests.post(url(server), json=event("task-of-another-service"), timeout=5)
    assert answer.json() == {"outcome": "unknown"}
    assert sent(ctx) == []
    assert ctx.store.get(job_id) == before
    assert counted(ctx) == {"unknown": 1.0}
    # Kept briefly, in case it is ours and its create's answer is still on its way.
    early = ctx.store.keys.provider_event_early("task-of-another-service")
    assert 0 < ctx.redis.ttl(early) <= 600


def test_an_event_whose_task_is_recorded_meanwhile_is_looked_at_once(ctx):
    """The race: no job had the task when the event was read, and the worker recorded it (and
    found no mark) before the mark was set. The receiver's second look at our tasks finds it
    and takes the mark, so exactly one of the two sends the query."""
    from wanedit.producers.provider_event import ProviderEvent
    from wanedit.producers.provider_events import _keep_early

    job_id = owned_job(ctx, "task-late")
    keys = ctx.store.keys
    assert _keep_early(ctx, keys, ProviderEvent("ev-late", "task-late")) == job_id
    assert ctx.redis.get(keys.provider_event_early("task-late")) is None  # taken
    # Not recorded yet: the mark stays for the worker that records the task.
    assert _keep_early(ctx, keys, ProviderEvent("ev-new", "task-new")) is None
    assert ctx.redis.get(keys.provider_event_early("task-new")) == "ev-new"


def test_a_duplicate_event_costs_one_query(ctx, server):
    job_id = owned_job(ctx, "task-d")
    body = event("task-d", event_id="ev-dup")
    answers = [requests.post(url(server), json=body, timeout=5).json() for _ in range(3)]
    assert answers == [{"outcome": "polled"}] + [{"outcome": "duplicate"}] * 2
    assert sent(ctx) == [repr([job_id, False, False])]
    assert counted(ctx) == {"polled": 1.0, "duplicate": 2.0}


def test_an_event_for_an_ended_job_sends_nothing(ctx, server):
    from wanedit.states import Status

    job_id = owned_job(ctx, "task-e")
    job = ctx.store.get(job_id)
    assert ctx.store.transition(job, Status.FAILED, {"error": {"code": "X", "message": "m"}})
    answer = requests.post(url(server), json=event("task-e"), timeout=5)
    assert answer.json() == {"outcome": "duplicate"}
    assert sent(ctx) == []


def test_a_10_mb_body_is_refused_without_being_read_and_the_server_stays_up(ctx, server):
    size = 10 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as conn:
        conn.sendall(
            f"POST /events?token={TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            f"\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        conn.sendall(b"{" + b" " * 65536)  # a start; the rest never comes
        status = conn.recv(4096).split(b"\r\n", 1)[0]
    assert b" 413 " in status
    assert requests.get(f"http://127.0.0.1:{server.server_port}/healthz", timeout=5).json() == {
        "ok": True
    }
    assert counted(ctx) == {"rejected": 1.0}


def test_a_slow_client_that_sends_nothing_does_not_hold_up_the_others(ctx, server):
    job_id = owned_job(ctx, "task-s")
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10):
        # This connection sends nothing; the others are served meanwhile.
        answer = requests.post(url(server), json=event("task-s"), timeout=5)
        assert answer.json() == {"outcome": "polled"}
        assert requests.get(f"http://127.0.0.1:{server.server_port}/healthz", timeout=5).ok
    assert sent(ctx) == [repr([job_id, False, False])]


def test_over_the_connection_limit_a_new_connection_is_answered_503(ctx):
    running = http_server(ctx, "127.0.0.1", 0, idle_timeout=30.0, connections=1)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", running.server_port), timeout=10):
            time.sleep(0.2)  # the idle connection holds the one slot
            answer = requests.get(f"http://127.0.0.1:{running.server_port}/healthz", timeout=5)
            assert answer.status_code == 503
        for _ in range(50):  # the slot is given back once the idle connection closes
            if requests.get(f"http://127.0.0.1:{running.server_port}/healthz", timeout=5).ok:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the slot was never given back")
    finally:
        running.shutdown()
        running.server_close()
