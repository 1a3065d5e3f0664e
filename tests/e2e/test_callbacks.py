"""Completion callbacks end to end: a real worker signs and POSTs the event to an HTTP receiver,
and sends it by name to another Celery app's worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import WEBHOOK_SECRET
from tests.receiver import webhook_receiver
from wanedit.config.celery import SWEEP_TASK
from wanedit.producers import cancel_job, get_job, submit_edit, wait_for_job
from wanedit.states import Status
from wanedit.store.events import read_events

pytestmark = pytest.mark.integration
TIMEOUT = 60
RECORD_TASK = "tests.callback_app.record_event"


def event_of(producer: Any, job_id: str) -> dict[str, Any]:
    stream = producer.settings.events_stream
    [event] = [e for _, e in read_events(producer.redis, stream) if e["job_id"] == job_id]
    return event


def delivered(job_id: str) -> dict[str, Any]:
    """The job once its webhook has an outcome."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        job = get_job(job_id)
        if job["webhook_status"] != "pending" or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_receiver_failing_twice_gets_the_signed_event_on_the_third_attempt(producer, image_file):
    with webhook_receiver([500, 500]) as receiver:
        job_id = submit_edit(
            prompt="webhook", images=[str(image_file("w.png"))], callback_url=receiver.url
        )
        assert wait_for_job(job_id, TIMEOUT)["status"] == "succeeded"
        job = delivered(job_id)

    event = event_of(producer, job_id)
    assert job["webhook_status"] == "delivered", job["webhook_attempts"]
    assert [a["status_code"] for a in job["webhook_attempts"]] == [500, 500, 200]
    assert all(a["at"] and a["duration"] >= 0 for a in job["webhook_attempts"])
    assert len(receiver.received) == 3
    for got in receiver.received:
        # The body is the stream event's JSON, byte for byte, and verifies with the spec's package.
        assert Webhook(WEBHOOK_SECRET).verify(got.body, got.headers) == event
        assert got.headers["webhook-id"] == f"{job_id}:job.succeeded"
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < TIMEOUT


def test_a_job_canceled_while_queued_is_delivered_too(producer, image_file):
    with webhook_receiver() as receiver:
        job_id = submit_edit(
            prompt="webhook cancel",
            images=[str(image_file("c.png"))],
            priority="batch",
            callback_url=receiver.url,
        )
        cancel_job(job_id)
        assert wait_for_job(job_id, TIMEOUT)["status"] == "canceled"
        job = delivered(job_id)

    assert job["webhook_status"] == "delivered"
    [got] = receiver.received
    assert Webhook(WEBHOOK_SECRET).verify(got.body, got.headers) == event_of(producer, job_id)


@pytest.fixture(scope="module")
def callback_worker(
    stack_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Another Celery app's worker, on its own queue, that writes each event to a Redis list."""
    queue, events = f"callbacks-{run_id}", f"callbacks-{run_id}:events"
    log = tmp_path_factory.mktemp("callbacks") / "worker.log"
    env = {
        **os.environ,
        "CALLBACK_TEST_REDIS_URL": stack_env["WANEDIT_REDIS_URL"],
        "CALLBACK_TEST_LIST": events,
    }
    command = [
        sys.executable, "-m", "celery", "-A", "tests.callback_app", "worker", "-Q", queue,
        "--pool", "solo", "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, env=env, cwd=Path(__file__).parents[2], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while b"ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the callback worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"queue": queue, "events": events}
    finally:
        process.terminate()
        process.wait(30)


def test_on_complete_sends_the_event_to_another_celery_app(producer, image_file, callback_worker):
    job_id = submit_edit(
        prompt="[sandbox:fail] celery callback",
        images=[str(image_file("o.png"))],
        on_complete=RECORD_TASK,
        on_complete_queue=callback_worker["queue"],
    )
    assert wait_for_job(job_id, TIMEOUT)["status"] == "failed"
    client = redis.Redis.from_url(producer.settings.redis_url, decode_responses=True)
    popped = client.blpop([callback_worker["events"]], timeout=TIMEOUT)
    assert popped is not None, "the other app's worker received no event"

    assert json.loads(popped[1]) == event_of(producer, job_id)
    assert get_job(job_id)["on_complete_status"] == "sent"


def test_the_sweeper_delivers_when_the_worker_died_before_sending(producer, run_id):
    """A worker lost right after the terminal transition never sent `wanedit.deliver`: the
    transition itself put the job in the callbacks index, and the sweeper sends it."""
    store = producer.store
    with webhook_receiver() as receiver:
        job_id = f"lost-{run_id}-{time.time_ns()}"
        store.create(job_id, {"prompt": "p", "images": [], "callback_url": receiver.url}, "s3://b/")
        error = {"code": "WorkerLost", "message": "simulated"}
        assert store.transition(store.get(job_id), Status.FAILED, {"error": error})
        # ... and the worker died here. Its due time is long past the sweeper's grace:
        producer.redis.zadd(store.keys.callbacks, {job_id: time.time() - 3600})
        producer.redis.delete(producer.store.keys.sweep_lock)
        producer.celery.send_task(SWEEP_TASK, queue=producer.settings.queue)
        job = delivered(job_id)

    assert job["webhook_status"] == "delivered"
    [got] = receiver.received
    assert Webhook(WEBHOOK_SECRET).verify(got.body, got.headers) == event_of(producer, job_id)


def test_the_documented_flask_receiver_verifies_and_takes_the_event(
    producer, image_file, capsys: pytest.CaptureFixture[str]
):
    """The documented receiver, run as printed, gets a real delivery and refuses a forgery."""
    import re
    import threading

    import requests
    from werkzeug.serving import make_server

    page = Path(__file__).parents[2] / "docs" / "callbacks.md"
    text = page.read_text()
    found = re.search(r"here in Flask:\n\n```python\n(.*?)```", text, re.S)
    assert found, "docs/callbacks.md lost its Flask receiver"
    namespace: dict[str, Any] = {"__name__": "documented_receiver"}
    assert os.environ["WANEDIT_WEBHOOK_SECRET"] == WEBHOOK_SECRET
    exec(compile(found.group(1), str(page), "exec"), namespace)
    server = make_server("127.0.0.1", 0, namespace["app"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/wanedit"
    try:
        forged = requests.post(
            url,
            data=b'{"job_id": "x"}',
            headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
            timeout=10,
        )
        assert forged.status_code == 400
        job_id = submit_edit(
            prompt="documented hook", images=[str(image_file("r.png"))], callback_url=url
        )
        assert wait_for_job(job_id, TIMEOUT)["status"] == "succeeded"
        job = delivered(job_id)
    finally:
        server.shutdown()
    assert job["webhook_status"] == "delivered", job["webhook_attempts"]
    assert [a["status_code"] for a in job["webhook_attempts"]] == [204]
    printed = capsys.readouterr().out
    assert f"{job_id} succeeded" in printed
