"""The Lua scripts through their typed wrappers, on a real Redis: what each writes, and what a
stale or repeated call leaves alone."""

from __future__ import annotations

import uuid

import pytest
import redis

from wanedit.states import Status
from wanedit.store.keys import Keys
from wanedit.store.record import Job, encode_fields
from wanedit.store.scripts import AccountTerms, Mark, Recorded, Scripts

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.fixture
def keys(client):
    value = Keys(f"scripts-{uuid.uuid4().hex[:8]}")
    yield value
    for key in client.scan_iter(f"{value.prefix}*"):
        client.delete(key)


@pytest.fixture
def scripts(client, keys):
    return Scripts(client, keys)


def create(scripts: Scripts, job_id: str | None = None, **options) -> str:
    job_id = job_id or uuid.uuid4().hex
    fields = {"id": job_id, "status": Status.QUEUED, "n": 1, "t_queued": 1.0}
    if options.get("fingerprint"):
        fields["request_fingerprint"] = options["fingerprint"]
    arguments = {"idempotency_key": None, "backlog": None, **options}
    created, got, conflict = scripts.create(
        job_id, score=1000, fields=encode_fields(fields), **arguments
    )
    assert created and not conflict
    return got


def move(scripts: Scripts, job_id: str, expected, target=None, **fields):
    return scripts.transition(
        job_id,
        expected=expected,
        target=target,
        ttl=3600,
        stream=f"{scripts.keys.prefix}:events",
        maxlen=100,
        fields=encode_fields(fields),
    )


def test_a_transition_with_a_stale_expected_status_changes_nothing(client, scripts, keys):
    job_id = create(scripts)
    assert move(scripts, job_id, [Status.QUEUED], Status.SUBMITTED, provider_task_id="t1") == (
        1,
        "queued",
    )
    before = client.hgetall(keys.job(job_id))
    # A second worker read the job while it was still queued: its change must not land.
    event = {"type": "job.failed", "job_id": job_id}
    ok, current = scripts.transition(
        job_id,
        expected=[Status.QUEUED],
        target=Status.FAILED,
        ttl=10,
        stream=f"{keys.prefix}:events",
        maxlen=100,
        event=event,
        callbacks_due=5.0,
        increments={"jobs_total|status=failed": 1},
        fields=encode_fields({"provider_task_id": "t2", "error": {"code": "X"}}),
    )
    assert (ok, current) == (0, "submitted")
    assert client.hgetall(keys.job(job_id)) == before
    assert client.ttl(keys.job(job_id)) == -1  # a job not ended never expires
    assert client.xlen(f"{keys.prefix}:events") == 0
    assert client.zcard(keys.callbacks) == 0
    assert client.exists(keys.metrics) == 0


def test_an_ending_transition_writes_its_event_callbacks_and_counts_once(client, scripts, keys):
    job_id = create(scripts)
    client.zadd(keys.due, {job_id: 1.0})
    event = {"type": "job.canceled", "job_id": job_id}
    arguments = dict(
        expected=[Status.QUEUED],
        target=Status.CANCELED,
        ttl=3600,
        stream=f"{keys.prefix}:events",
        maxlen=100,
        event=event,
        callbacks_due=7.0,
        increments={"jobs_total|status=canceled": 1},
    )
    assert scripts.transition(job_id, **arguments)[0] == 1
    assert scripts.transition(job_id, **arguments) == (0, "canceled")
    assert client.hget(keys.job(job_id), "status") == "canceled"
    assert client.xlen(f"{keys.prefix}:events") == 1
    assert client.zscore(keys.callbacks, job_id) == 7.0
    assert client.zscore(keys.due, job_id) is None
    assert client.hget(keys.metrics, "jobs_total|status=canceled") == "1"
    assert Job.from_hash(client.hgetall(keys.job(job_id))).event is not None


def test_any_status_is_an_explicit_choice(client, scripts, keys):
    job_id = create(scripts)
    move(scripts, job_id, [Status.QUEUED], Status.CANCELED)
    assert move(scripts, job_id, None, cancel_requested=True) == (1, "canceled")
    assert client.hget(keys.job(job_id), "cancel_requested") == "1"
    # An empty list of expected statuses expects none: nothing changes.
    assert move(scripts, job_id, [], cancel_requested=False) == (0, "canceled")
    assert client.hget(keys.job(job_id), "cancel_requested") == "1"


def test_a_missing_job_is_told_apart(scripts):
    assert move(scripts, "nope", None, polls=1) == (-1, "")
    assert scripts.delivery("nope", attempts=None, due=None, done=False, fields=[]) == -1


def test_create_keeps_the_first_job_for_an_id_and_for_an_idempotency_key(client, scripts, keys):
    first = create(scripts, idempotency_key="k", backlog=keys.backlog("batch"))
    fields = encode_fields({"id": "other", "status": Status.QUEUED})
    again = dict(score=5, fields=fields)
    assert scripts.create("other", idempotency_key="k", backlog=None, **again) == (
        False,
        first,
        False,
    )
    assert not client.exists(keys.job("other"))
    assert scripts.create(first, idempotency_key=None, backlog=None, **again) == (
        False,
        first,
        False,
    )
    assert client.hget(keys.job(first), "id") == first
    assert client.zscore(keys.backlog("batch"), first) == 1000
    assert client.get(keys.idempotency("k")) == first


def test_create_tells_a_key_used_for_another_request_apart(client, scripts, keys):
    first = create(scripts, idempotency_key="fp", fingerprint="a" * 64)
    assert client.hget(keys.job(first), "request_fingerprint") == "a" * 64
    fields = encode_fields({"id": "other", "status": Status.QUEUED})
    again = dict(score=5, idempotency_key="fp", backlog=None, fields=fields)
    assert scripts.create("other", fingerprint="a" * 64, **again) == (False, first, False)
    assert scripts.create("other", fingerprint="b" * 64, **again) == (False, first, True)
    assert scripts.create("other", fingerprint=None, **again) == (False, first, False)
    assert not client.exists(keys.job("other"))
    # A job recorded without a fingerprint (before they existed) is not compared.
    old = create(scripts, idempotency_key="old")
    assert scripts.create("other", fingerprint="b" * 64, **{**again, "idempotency_key": "old"}) == (
        False,
        old,
        False,
    )


def test_mark_create_once_and_only_while_queued(client, scripts, keys):
    job_id = create(scripts)
    assert scripts.mark_create(job_id, now=12.5, due=72.5) is Mark.NOTED
    assert scripts.mark_create(job_id, now=13.0, due=73.0) is Mark.BEFORE
    assert client.hget(keys.job(job_id), "create_sent_at") == "12.5"
    other = create(scripts)
    move(scripts, other, [Status.QUEUED], Status.SUBMITTED)
    assert scripts.mark_create(other, now=14.0, due=74.0) is Mark.NOT_QUEUED
    assert client.hget(keys.job(other), "create_sent_at") is None


def test_a_job_is_in_the_due_index_from_the_moment_its_create_is_marked(client, scripts, keys):
    """A worker lost between noting the create and recording its task leaves a job the sweeper
    sees: the note and the due entry are one step, and so are the submitted status and the
    first poll's due time."""
    job_id = create(scripts)
    assert client.zscore(keys.due, job_id) is None
    assert scripts.mark_create(job_id, now=12.5, due=72.5) is Mark.NOTED
    assert client.zscore(keys.due, job_id) == 72.5
    fields = encode_fields({"provider_status": "PENDING"})
    recorded = scripts.record_task(job_id, task_id="t-1", due=15.0, fields=fields)
    assert (recorded.outcome, recorded.previous) == (Recorded.SUBMITTED, "queued")
    assert client.hget(keys.job(job_id), "status") == "submitted"
    assert client.zscore(keys.due, job_id) == 15.0


def test_a_requested_cancel_lets_no_create_go(client, scripts, keys):
    job_id = create(scripts)
    move(scripts, job_id, [Status.QUEUED], cancel_requested=True)
    assert scripts.mark_create(job_id, now=12.5, due=72.5) is Mark.CANCEL
    assert client.hget(keys.job(job_id), "create_sent_at") is None
    assert client.zscore(keys.due, job_id) is None


def test_a_task_id_is_recorded_only_where_none_is(client, scripts, keys):
    """A second create's task never replaces the job's, on a submitted or an ended job."""
    job_id = create(scripts)
    scripts.mark_create(job_id, now=1.0, due=61.0)
    move(scripts, job_id, [Status.QUEUED], cancel_requested=True)
    first = scripts.record_task(job_id, task_id="t-1", due=2.0, fields=[])
    assert (first.outcome, first.cancel_requested) == (Recorded.SUBMITTED, True)
    again = scripts.record_task(job_id, task_id="t-2", due=3.0, fields=[])
    assert (again.outcome, again.task_id) == (Recorded.HAS_TASK, "t-1")
    assert client.hget(keys.job(job_id), "provider_task_id") == "t-1"
    assert client.zscore(keys.due, job_id) == 2.0

    ended = create(scripts)
    move(scripts, ended, [Status.QUEUED], Status.FAILED)
    kept = scripts.record_task(ended, task_id="t-3", due=4.0, fields=[])
    assert (kept.outcome, kept.previous) == (Recorded.ENDED, "failed")
    assert client.hget(keys.job(ended), "provider_task_id") == "t-3"
    assert client.hget(keys.job(ended), "status") == "failed"
    later = scripts.record_task(ended, task_id="t-4", due=5.0, fields=[])
    assert (later.outcome, later.task_id) == (Recorded.HAS_TASK, "t-3")


def test_clearing_a_create_is_compare_and_set_on_the_one_read(client, scripts, keys):
    """A look that read an older create never clears the newer one sent since."""
    job_id = create(scripts)
    scripts.mark_create(job_id, now=1764689000.123456, due=0)
    assert scripts.clear_create(job_id, sent_at=1764689000.123456)
    assert not scripts.clear_create(job_id, sent_at=1764689000.123456)
    scripts.mark_create(job_id, now=1764689100.5, due=0)
    assert not scripts.clear_create(job_id, sent_at=1764689000.123456)
    assert client.hget(keys.job(job_id), "create_sent_at") == "1764689100.5"


def test_delivery_is_compare_and_set_on_the_attempts(client, scripts, keys):
    job_id = create(scripts)
    one = encode_fields({"webhook_attempts": [{"status_code": 500}]})
    assert scripts.delivery(job_id, attempts=0, due=9.0, done=False, fields=one) == 1
    assert client.zscore(keys.callbacks, job_id) == 9.0
    # The redelivered first attempt finds one attempt recorded already.
    assert scripts.delivery(job_id, attempts=0, due=20.0, done=True, fields=[]) == 0
    assert client.zscore(keys.callbacks, job_id) == 9.0
    assert scripts.delivery(job_id, attempts=None, due=None, done=False, fields=[]) == 1
    assert client.zscore(keys.callbacks, job_id) == 9.0
    assert scripts.delivery(job_id, attempts=1, due=None, done=True, fields=[]) == 1
    assert client.zscore(keys.callbacks, job_id) is None


def test_admit_claim_release_with_the_queued_status_from_the_enum(client, scripts, keys):
    job_id = create(scripts, backlog=keys.backlog("interactive"))
    done = create(scripts, backlog=keys.backlog("interactive"))
    move(scripts, done, [Status.QUEUED], Status.CANCELED)
    flat, blocked, waiting, reclaimed = scripts.admit(
        day="20260101",
        accounts=[AccountTerms("a1", 2, 1000.0)],
        lease_ms=60_000,
        batch_max_wait_ms=600_000,
        default_cap=0,
        max_admits=10,
        horizon_ms=1000,
        now_ms=5_000,
    )
    assert (flat, blocked, waiting, reclaimed) == ([job_id, "a1", "0", "1"], "", 0, 0)
    record = client.hgetall(keys.job(job_id))
    assert (record["account"], record["spend_day"], record["reserved"]) == ("a1", "20260101", "1")
    assert scripts.claim(job_id, account="a1", lease_ms=60_000, now_ms=6_000)
    assert scripts.claim(job_id, account="a1", lease_ms=60_000, now_ms=6_000, token=1)
    assert not scripts.claim(job_id, account="a1", lease_ms=60_000, now_ms=6_000, token=2)
    assert not scripts.claim(job_id, account="a2", lease_ms=60_000, now_ms=6_000)
    assert scripts.release(job_id, account="a1", billed=0)
    assert not scripts.release(job_id, account="a1", billed=0)
    assert client.hget(keys.spend("20260101"), "total") == "0"


def test_reserve_penalize_book_woke(client, scripts, keys):
    wait = dict(account="a1", kind="query", interval_ms=100.0, tolerance_ms=0.0, now_ms=1_000)
    assert scripts.reserve(**wait) == 0
    assert scripts.reserve(**wait) == 100
    assert scripts.penalize(account="a1", kind="query", most=8, ttl_ms=30_000) == 2
    assert scripts.penalize(account="a1", kind="query", most=2, ttl_ms=30_000) == 2
    assert scripts.book("admit", at_ms=2_000, ttl_ms=60_000)
    assert not scripts.book("admit", at_ms=3_000, ttl_ms=60_000)
    assert scripts.book("admit", at_ms=1_500, ttl_ms=60_000)
    scripts.woke("admit", now_ms=1_000)
    assert client.get(keys.wake("admit")) == "1500"
    scripts.woke("admit", now_ms=1_600)
    assert client.get(keys.wake("admit")) is None
