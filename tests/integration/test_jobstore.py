"""Job records on a real Redis: compare-and-set transitions and exactly one terminal event."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
import redis

from wanedit.errors import JobNotFound
from wanedit.states import Status
from wanedit.store.events import read_events
from wanedit.store.jobs import JobStore

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    prefix = f"jobstore-{uuid.uuid4().hex[:8]}"
    yield JobStore(
        client,
        key_prefix=prefix,
        events_stream=f"{prefix}:events",
        events_maxlen=1000,
        ttl_seconds=3600,
    )
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def new_job(store: JobStore, key: str | None = None) -> str:
    job_id = uuid.uuid4().hex
    created, got = store.create(
        job_id,
        {"prompt": "p", "images": [], "metadata": {"a": 1}},
        "s3://b/p/",
        idempotency_key=key,
    )
    assert created
    return got


def events(store: JobStore) -> list[dict]:
    return [event for _, event in read_events(store.redis, store.events_stream)]


def test_create_sets_status_and_timestamp_and_no_expiry(store):
    job = store.get(new_job(store))
    assert job.status is Status.QUEUED
    assert job.timestamps["queued"] > 0
    assert job.metadata == {"a": 1}
    assert store.redis.ttl(store.keys.job(job.id)) == -1


def test_transitions_are_compare_and_set(store):
    job = store.get(new_job(store))
    assert store.transition(job, Status.SUBMITTED, {"provider_task_id": "t1"})
    assert not store.transition(job, Status.SUBMITTED, {"provider_task_id": "t2"})
    assert store.get(job.id).provider_task_id == "t1"
    assert not store.transition(job, Status.SUCCEEDED)  # submitted -> succeeded is not allowed


def test_concurrent_terminal_transitions_emit_exactly_one_event(store):
    job = store.get(new_job(store))
    store.transition(job, Status.SUBMITTED)
    store.transition(job, Status.RUNNING)
    results: list[bool] = []

    def race(target: Status) -> None:
        error = None if target is Status.SUCCEEDED else {"code": "X", "message": "m"}
        results.append(store.transition(job, target, {"error": error}))

    threads = [
        threading.Thread(target=race, args=(target,))
        for target in [Status.SUCCEEDED, Status.FAILED, Status.CANCELED] * 5
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    emitted = events(store)
    assert len(emitted) == 1
    assert emitted[0]["event_id"] == f"{job.id}:{emitted[0]['type']}"
    assert emitted[0]["status"] == store.get(job.id).status.value
    assert emitted[0]["metadata"] == {"a": 1}


def test_update_only_in_allowed_states(store):
    job = store.get(new_job(store))
    assert not store.update(job, {"polls": 3}, while_in=[Status.RUNNING])
    assert store.update(job, {"polls": 3}, while_in=[Status.QUEUED])
    assert store.get(job.id).polls == 3


def test_idempotency_key_maps_to_the_first_job(store):
    first = new_job(store, key="k1")
    created, existing = store.create("other", {"images": []}, "s3://b/p/", idempotency_key="k1")
    assert (created, existing) == (False, first)
    assert store.find_idempotent("k1") == first
    with pytest.raises(JobNotFound):
        store.get("other")


def test_missing_job(store):
    with pytest.raises(JobNotFound):
        store.get("nope")


def test_event_is_json_in_the_data_field(store):
    job = store.get(new_job(store))
    store.transition(job, Status.FAILED, {"error": {"code": "C", "message": "m"}})
    [(_, fields)] = store.redis.xrange(store.events_stream)
    assert fields["type"] == "job.failed"
    data = json.loads(fields["data"])
    assert data["error"] == {"code": "C", "message": "m"}
    assert data["outputs"] == []


def test_get_many_reads_in_chunks_in_order_and_skips_expired_jobs(store):
    ids = [new_job(store) for _ in range(23)]
    store.redis.delete(store.keys.job(ids[7]))  # expired
    calls: list[int] = []
    execute = store.redis.pipeline

    def counting_pipeline(*args, **kwargs):
        calls.append(1)
        return execute(*args, **kwargs)

    store.redis.pipeline = counting_pipeline  # type: ignore[method-assign]
    try:
        jobs = list(store.get_many(iter(ids), chunk=5))
    finally:
        del store.redis.pipeline
    assert [job.id for job in jobs] == ids[:7] + ids[8:]
    assert all(job.metadata == {"a": 1} for job in jobs)
    assert len(calls) == 5  # 23 ids, 5 a round trip
    assert list(store.get_many([])) == []
