"""Cancel: a queued job is never sent; a PENDING provider task is canceled there; a RUNNING one
cannot be, and its result is delivered."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from producers import cancel_job, get_job, wait_for_job
from tests.e2e.test_pipeline import events_for
from wanedit.devstack import SANDBOX_KEY
from workers.client import ProviderClient, make_session

pytestmark = pytest.mark.integration


def test_queued_job_is_canceled_and_never_sent(producer, sandbox):
    from workers import tasks

    job_id = uuid.uuid4().hex
    producer.store.create(job_id, {"prompt": "p", "images": ["https://x/a.png"]}, "s3://b/p/")
    creates_before = sandbox.stats()["create_requests"]

    job = cancel_job(job_id)
    tasks.submit.run(job_id)  # the submit message arriving late changes nothing

    assert job["status"] == "canceled"
    assert job["error"]["code"] == "Canceled"
    assert sandbox.stats()["create_requests"] == creates_before
    assert [event["type"] for event in events_for(producer, job_id)] == ["job.canceled"]


@pytest.fixture
def slow_sandbox(sandbox):
    config_url = sandbox.base_url.removesuffix("/api/v1") + "/sandbox/config"
    requests.post(config_url, json={"duration_min": 4.0, "duration_max": 4.0}, timeout=5)
    yield sandbox
    requests.post(config_url, json={"duration_min": 0.5, "duration_max": 1.5}, timeout=5)


def test_pending_task_is_canceled_running_one_is_delivered(producer, slow_sandbox, image_file):
    from producers import submit_edit

    source = str(image_file("c.png"))
    jobs = [submit_edit(prompt=f"cancel test {i}", images=[source]) for i in range(6)]
    provider = ProviderClient(make_session(), slow_sandbox.base_url, SANDBOX_KEY)
    deadline = time.monotonic() + 30
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        records = [get_job(job_id) for job_id in jobs]
        if all(record["provider_task_id"] for record in records):
            states = {r["id"]: provider.get(r["provider_task_id"]).status for r in records}
            break
        time.sleep(0.1)
    pending = [job_id for job_id, status in states.items() if status == "PENDING"]
    running = [job_id for job_id, status in states.items() if status == "RUNNING"]
    assert pending and running, states

    cancel_job(pending[0])
    cancel_job(running[0])

    canceled = wait_for_job(pending[0], 30)
    assert canceled["status"] == "canceled"
    assert canceled["provider_status"] == "CANCELED"
    delivered = wait_for_job(running[0], 30)
    assert delivered["status"] == "succeeded"
    assert delivered["cancel_refused"]
    assert [e["type"] for e in events_for(producer, pending[0])] == ["job.canceled"]
    assert [e["type"] for e in events_for(producer, running[0])] == ["job.succeeded"]
    for job_id in jobs:
        assert wait_for_job(job_id, 30)["status"] in ("succeeded", "canceled")
