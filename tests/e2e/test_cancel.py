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
from wanedit.store.events import read_events
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


def _in_flight_stack(stack_env, provider, tag, tmp_path):
    from tests.e2e.test_overlapping_submits import hold_first_create

    proxy, held = hold_first_create(provider.base_url)
    env, context = own_stack(stack_env, tag, proxy.base_url, {"WANEDIT_HTTP_READ_TIMEOUT": "30"})
    worker = Worker(env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    return proxy, held, context, worker


def test_a_cancel_during_the_create_cancels_the_pending_task_once_it_is_recorded(
    stack_env, tmp_path, image_file, run_id
):
    """The create is in flight when the cancel comes: the cancel is recorded as requested, and
    once the create is answered its task, still PENDING, is canceled at the provider; the slot
    is given back at once and the day counts nothing."""
    # One provider slot, taken by another system's long task: ours waits there as PENDING.
    provider = SandboxServer(
        SandboxConfig(
            api_keys=(SANDBOX_KEY,), concurrency=1, duration_min=20.0, duration_max=20.0, seed=5
        )
    ).start()
    outsider = ProviderClient(make_session(), provider.base_url, SANDBOX_KEY)
    image = encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png")
    outsider.create("wan2.5-i2i-preview", {"input": {"prompt": "x", "images": [image]}})
    proxy, held, context, worker = _in_flight_stack(
        stack_env, provider, f"cancel-flight-{run_id}", tmp_path
    )
    try:
        job_id = submit_edit(prompt="cancel me", images=[str(image_file("f.png"))], context=context)
        assert held.passed.wait(30)
        asked = cancel_job(job_id, context=context)
        held.release()
        done = wait_for_job(job_id, 30, context=context)
        in_flight = context.admission.in_flight("default")
        spent = context.admission.spent_today()
        events = [e for _, e in read_events(context.redis, context.settings.events_stream)]
    finally:
        held.release()
        worker.stop()
        proxy.stop()
        provider.stop()
    assert (asked["status"], asked["cancel_requested"]) == ("queued", True)
    assert done["status"] == "canceled"
    assert (done["provider_task_id"], done["provider_status"]) == (held.task_id, "CANCELED")
    assert [e["type"] for e in events if e["job_id"] == job_id] == ["job.canceled"]
    assert in_flight == 0
    assert spent.get("total", 0) == 0


def test_a_cancel_during_the_create_of_a_task_that_starts_is_reported_too_late(
    stack_env, tmp_path, image_file, run_id
):
    """The task made by the create in flight starts at once: it cannot be canceled, so its
    result is delivered and its event says the cancel came too late; the day counts its image."""
    provider = SandboxServer(
        SandboxConfig(api_keys=(SANDBOX_KEY,), duration_min=1.0, duration_max=1.5, seed=6)
    ).start()
    proxy, held, context, worker = _in_flight_stack(
        stack_env, provider, f"cancel-late-{run_id}", tmp_path
    )
    try:
        job_id = submit_edit(prompt="too late", images=[str(image_file("g.png"))], context=context)
        assert held.passed.wait(30)
        asked = cancel_job(job_id, context=context)
        held.release()
        done = wait_for_job(job_id, 30, context=context)
        in_flight = context.admission.in_flight("default")
        spent = context.admission.spent_today()
        events = [e for _, e in read_events(context.redis, context.settings.events_stream)]
    finally:
        held.release()
        worker.stop()
        proxy.stop()
        provider.stop()
    assert asked["status"] == "queued"
    assert done["status"] == "succeeded", done["error"]
    assert done["cancel_refused"]
    [event] = [e for e in events if e["job_id"] == job_id]
    assert (event["type"], event["cancel"]) == ("job.succeeded", "too_late")
    assert in_flight == 0
    assert spent["total"] == 1
