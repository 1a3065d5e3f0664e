"""Cancel: a queued job is never sent; a PENDING provider task is canceled there; a RUNNING one
cannot be, and its result is delivered."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import make_image
from tests.e2e.conftest import own_stack
from tests.e2e.test_pipeline import events_for
from wanedit.images import encode_data_uri
from wanedit.producers import cancel_job, get_job, submit_edit, wait_for_job
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker
from wanedit.workers.client import ProviderClient, make_session

pytestmark = pytest.mark.integration


def test_queued_job_is_canceled_and_never_sent(producer, sandbox):
    from wanedit.workers import tasks

    job_id = uuid.uuid4().hex
    producer.store.create(job_id, {"prompt": "p", "images": ["https://x/a.png"]}, "s3://b/p/")
    creates_before = sandbox.stats()["create_requests"]

    job = cancel_job(job_id)
    tasks.submit.run(job_id, "default")  # a submit message arriving late changes nothing

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


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_backlogged_job_is_canceled_before_it_reaches_the_provider(
    producer, slow_sandbox, image_file
):
    source = str(image_file("q.png"))
    jobs = [submit_edit(prompt=f"fill {i}", images=[source]) for i in range(6)]
    # Five slots per account: the sixth waits with us, not at the provider.
    wait_until(lambda: sum(get_job(j)["provider_task_id"] is not None for j in jobs) == 5)
    [waiting] = [j for j in jobs if get_job(j)["status"] == "queued"]
    creates = slow_sandbox.stats()["create_requests"]

    assert cancel_job(waiting)["status"] == "canceled"
    for job_id in jobs:
        wait_for_job(job_id, 30)
    assert slow_sandbox.stats()["create_requests"] == creates
    assert [e["type"] for e in events_for(producer, waiting)] == ["job.canceled"]


def test_pending_task_is_canceled_running_one_is_delivered(producer, slow_sandbox, image_file):
    # Another system on the same account fills the provider's five slots, so our task waits
    # there as PENDING.
    outsider = ProviderClient(make_session(), slow_sandbox.base_url, SANDBOX_KEY)
    image = encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png")
    for _ in range(5):
        outsider.create("wan2.5-i2i-preview", {"input": {"prompt": "x", "images": [image]}})
        time.sleep(0.21)
    source = str(image_file("c.png"))
    pending = submit_edit(prompt="cancel me", images=[source])
    task_id = wait_until(lambda: get_job(pending)["provider_task_id"])
    assert outsider.get(task_id).status == "PENDING"

    cancel_job(pending)
    canceled = wait_for_job(pending, 30)
    assert canceled["status"] == "canceled"
    assert canceled["provider_status"] == "CANCELED"
    assert [e["type"] for e in events_for(producer, pending)] == ["job.canceled"]

    running = submit_edit(prompt="too late to cancel", images=[source])
    task_id = wait_until(lambda: get_job(running)["provider_task_id"])
    wait_until(lambda: outsider.get(task_id).status == "RUNNING")
    cancel_job(running)
    delivered = wait_for_job(running, 30)
    assert delivered["status"] == "succeeded"
    assert delivered["cancel_refused"]
    assert [e["type"] for e in events_for(producer, running)] == ["job.succeeded"]


def test_cancels_take_turns_of_the_query_rate(stack_env, tmp_path, image_file, run_id):
    """Cancel calls count against the provider's query budget like status queries: five cancels
    asked for at once go out at the account's query rate, and the provider throttles none."""
    # One provider slot, five of ours: four tasks wait PENDING at the provider, for 10 s, far
    # longer than five cancels take at two queries a second.
    provider = SandboxServer(
        SandboxConfig(
            api_keys=(SANDBOX_KEY,), concurrency=1, query_rate=2.0, duration_min=10.0,
            duration_max=10.0, seed=4,
        )
    ).start()  # fmt: skip
    env, context = own_stack(
        stack_env, f"cancel-rate-{run_id}", provider.base_url, {"WANEDIT_QUERY_RATE": "2"}
    )
    worker = Worker(env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    try:
        source = str(image_file("r.png"))
        jobs = [submit_edit(prompt=f"rate {i}", images=[source], context=context) for i in range(5)]
        wait_until(lambda: all(get_job(j, context=context)["provider_task_id"] for j in jobs))
        provider.sandbox.reset_stats()
        for job_id in jobs:
            cancel_job(job_id, context=context)
        done = [wait_for_job(job_id, 60, context=context) for job_id in jobs]
    finally:
        worker.stop()
        provider.stop()
    stats = provider.stats()
    assert sorted(job["status"] for job in done) == ["canceled"] * 4 + ["succeeded"]
    assert (stats["cancel_requests"], stats["cancels"]) == (5, 4)
    assert stats["throttled"] == 0
