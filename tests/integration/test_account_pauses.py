"""Paused accounts on a real Redis: admission gives them no slot, a job admitted to one goes
back to the backlog with its reservation given back, and pausing and resuming each write one
event."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from tests.integration.test_admission import Clock, enqueue, make
from wanedit.accounts import Account

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def prefix(client):
    value = f"pause-{uuid.uuid4().hex[:8]}"
    yield value
    for key in client.scan_iter(f"{value}*"):
        client.delete(key)


def events(client, prefix):
    return [json.loads(fields["data"]) for _, fields in client.xrange(f"{prefix}:events")]


def pause(admission, prefix, account, code="InvalidApiKey", message="Invalid API-key provided."):
    stream = f"{prefix}:events"
    return admission.pauses.pause(account, code, message, stream=stream, maxlen=100, now=100.0)


def test_a_paused_account_gets_no_slot_and_the_others_serve(client, prefix, clock):
    store, admission = make(
        client, prefix, clock,
        Account(name="good", concurrency=2, submit_rate=1000),
        Account(name="bad", concurrency=2, submit_rate=1000),
    )  # fmt: skip
    assert pause(admission, prefix, "bad")
    jobs = [enqueue(store, admission) for _ in range(3)]
    result = admission.admit()
    assert [(item.job_id, item.account) for item in result.admitted] == [
        (jobs[0], "good"), (jobs[1], "good"),
    ]  # fmt: skip
    assert result.blocked_by == "slots"  # the serving account is full: it waits for a slot

    assert pause(admission, prefix, "good", "Arrearage", "unpaid")
    admission.release(jobs[0], "good", 1)
    result = admission.admit()
    assert result.admitted == [] and result.blocked_by == "paused"
    assert result.waiting == 1

    lifted = admission.pauses.resume("bad", by="command", stream=f"{prefix}:events", maxlen=100)
    assert lifted is not None and lifted.code == "InvalidApiKey"
    assert [item.account for item in admission.admit().admitted] == ["bad"]


def test_pausing_twice_keeps_its_moment_and_writes_one_event(client, prefix, clock):
    _, admission = make(client, prefix, clock, Account(name="a1"))
    assert pause(admission, prefix, "a1", "InvalidApiKey", "first")
    assert not pause(admission, prefix, "a1", "Arrearage", "second")
    now = admission.pauses.get("a1")
    assert (now.code, now.message, now.since) == ("Arrearage", "second", 100.0)
    stream = f"{prefix}:events"
    assert admission.pauses.resume("a1", by="probe", stream=stream, maxlen=100) is not None
    assert admission.pauses.resume("a1", by="probe", stream=stream, maxlen=100) is None
    assert admission.pauses.all() == {}
    seen = events(client, prefix)
    assert [event["type"] for event in seen] == ["account.paused", "account.resumed"]
    assert seen[0]["account"] == "a1" and seen[0]["error"]["code"] == "InvalidApiKey"
    assert seen[1]["by"] == "probe" and seen[1]["paused"]["code"] == "Arrearage"


def test_a_job_admitted_to_a_paused_account_goes_back_to_the_backlog(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=2, submit_rate=1000), cap=10
    )
    first, second = enqueue(store, admission, n=2), enqueue(store, admission, n=3)
    admitted = {item.job_id: item for item in admission.admit().admitted}
    assert admission.spent_today()["a1"] == 5
    stale = admitted[first].token - 1
    assert not admission.pauses.requeue(first, "a1", stale)  # not this admission's slot
    assert admission.pauses.requeue(first, "a1", admitted[first].token)
    assert not admission.pauses.requeue(first, "a1", None)  # once
    assert admission.in_flight_jobs("a1") == [second]
    assert admission.spent_today()["a1"] == 3  # its reservation is given back
    job = store.get(first)
    assert job.account is None and job.status.value == "queued"
    # It keeps its place: it is the next one admitted.
    assert [item.job_id for item in admission.admit().admitted] == [first]


def test_one_probe_per_interval_across_workers_and_a_resume_frees_the_turn(client, prefix, clock):
    _, admission = make(client, prefix, clock, Account(name="a1"))
    _, other_worker = make(client, prefix, clock, Account(name="a1"))
    assert admission.pauses.probe_turn("a1", 0.3)
    assert not other_worker.pauses.probe_turn("a1", 0.3)
    assert other_worker.pauses.probe_turn("a2", 0.3)  # each account has its own turn
    pause(admission, prefix, "a1")
    admission.pauses.resume("a1", by="command", stream=f"{prefix}:events", maxlen=100)
    # A pause that comes back is probed at once, not an interval after the last probe.
    assert other_worker.pauses.probe_turn("a1", 0.3)
    client.delete(admission.keys.account_probe("a1"))
    assert admission.pauses.probe_turn("a1", 0.3)
    time.sleep(0.35)
    assert other_worker.pauses.probe_turn("a1", 0.3)
