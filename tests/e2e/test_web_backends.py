"""Enqueueing from web backends, as docs/web-backends.md shows it: the FastAPI view, and the
`wanedit.enqueue` message a backend in another language pushes with its own Redis client, run
against a real worker."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tests.conftest import make_image
from wanedit.config.celery import ENQUEUE_TASK
from wanedit.errors import JobNotFound
from wanedit.ids import new_job_id
from wanedit.producers.api import get_job, wait_for_job
from wanedit.sandbox.stack import patched_env

pytestmark = pytest.mark.integration

PAGE = Path(__file__).parents[2] / "docs" / "web-backends.md"


def documented_view() -> Any:
    """The FastAPI app exactly as docs/web-backends.md shows it."""
    text = PAGE.read_text()
    block = re.search(
        r"<!-- fastapi-view -->\n```python\n(.*?)```\n<!-- /fastapi-view -->", text, re.S
    )
    assert block, "docs/web-backends.md lost its fastapi-view block"
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), str(PAGE), "exec"), namespace)
    return namespace["app"]


def data_uri() -> str:
    return "data:image/png;base64," + base64.b64encode(make_image(512, 640, (30, 90, 200))).decode()


def envelope(queue: str, job_id: str, request: dict[str, Any]) -> str:
    """The message as the docs give it to Go and Node backends, field for field."""
    message_id = str(uuid.uuid4())
    body = [[], {"job_id": job_id, "request": request},
            {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]  # fmt: skip
    return json.dumps(
        {
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "content-type": "application/json",
            "content-encoding": "utf-8",
            "headers": {
                "lang": "py",
                "task": ENQUEUE_TASK,
                "id": message_id,
                "root_id": message_id,
                "parent_id": None,
                "group": None,
                "retries": 0,
                "eta": None,
                "expires": None,
            },
            "properties": {
                "correlation_id": message_id,
                "delivery_mode": 2,
                "delivery_tag": str(uuid.uuid4()),
                "body_encoding": "base64",
                "priority": 0,
                "delivery_info": {"exchange": "", "routing_key": queue},
            },
        }
    )


def wait_ended(job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Wait for a job that a message will create: it does not exist until the task has run."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return wait_for_job(job_id, max(deadline - time.monotonic(), 0))
        except JobNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def events_of(producer: Any, job_id: str) -> list[str]:
    entries = producer.redis.xrange(producer.settings.events_stream)
    return [fields["type"] for _, fields in entries if fields["job_id"] == job_id]


def test_documented_fastapi_view_submits_and_returns_the_job_id(producer):
    client = TestClient(documented_view())
    answer = client.post("/edits", json={"prompt": "Add a scarf", "images": [data_uri()]})
    assert answer.status_code == 202, answer.text
    job = wait_for_job(answer.json()["job_id"], 60)
    assert job["status"] == "succeeded"

    refused = client.post("/edits", json={"prompt": "p", "images": [data_uri()], "n": 9})
    assert refused.status_code == 422
    assert refused.json() == {"detail": ["n: 9 is outside 1 to 4 images"]}


def test_documented_fastapi_view_answers_503_when_redis_is_down(stack_env):
    from tests.e2e.conftest import _reset_process_state

    with patched_env({"WANEDIT_REDIS_URL": "redis://127.0.0.1:1/0"}):
        _reset_process_state()
        try:
            started = time.monotonic()
            answer = TestClient(documented_view()).post(
                "/edits", json={"prompt": "p", "images": [data_uri()]}
            )
            elapsed = time.monotonic() - started
        finally:
            _reset_process_state()
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("Redis cannot be reached: ConnectionError")
    assert elapsed < 5


def test_raw_lpush_of_the_documented_envelope_runs_one_job(producer, s3):
    job_id = new_job_id()
    request = {
        "prompt": "Make the sky purple",
        "images": [data_uri()],
        "metadata": {"from": "node"},
    }
    message = envelope(producer.settings.queue, job_id, request)
    plain = redis.Redis.from_url(producer.settings.redis_url)  # not kombu: what Go or Node does
    plain.lpush(producer.settings.queue, message)
    plain.lpush(producer.settings.queue, message)  # sent twice: still one job

    job = wait_ended(job_id)
    assert job["status"] == "succeeded", job
    assert job["metadata"] == {"from": "node"}
    [staged] = job["request"]["images"]
    assert staged == f"s3://wanedit-test/wanedit-staging/{job_id}/input-0.png"
    time.sleep(1)  # let the second message run too
    assert events_of(producer, job_id) == ["job.succeeded"]


def test_send_task_by_name_with_a_local_path_records_a_failed_job(producer, image_file):
    job_id = new_job_id()
    request = {"prompt": "p", "images": [str(image_file("local.png")), "ftp://x/y.png"]}
    producer.celery.send_task(
        ENQUEUE_TASK, kwargs={"job_id": job_id, "request": request}, queue=producer.settings.queue
    )
    job = wait_ended(job_id)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "InvalidRequest"
    assert "images[1]: scheme 'ftp' is not accepted" in job["error"]["message"]
    assert events_of(producer, job_id) == ["job.failed"]


def test_a_message_reusing_an_idempotency_key_says_where_the_job_is(producer):
    first, second = new_job_id(), new_job_id()
    request = {"prompt": "p", "images": [data_uri()], "idempotency_key": f"web-{first}"}
    for job_id in (first, second):
        producer.celery.send_task(
            ENQUEUE_TASK,
            kwargs={"job_id": job_id, "request": request},
            queue=producer.settings.queue,
        )
        if job_id == first:
            assert wait_ended(first)["status"] == "succeeded"
    job = wait_ended(second)
    assert job["error"]["code"] == "Duplicate"
    assert first in job["error"]["message"]
    with pytest.raises(JobNotFound):
        get_job(new_job_id())


def bomb_uri() -> str:
    """A 65-byte PNG whose header claims 20000x20000 px, as a data URI."""
    from tests.unit.test_images import _png_claiming

    return "data:image/png;base64," + base64.b64encode(_png_claiming(20000, 20000)).decode()


BOMB_REFUSED = (
    "images[0]: 20000x20000 px (400,000,000 px) is over the provider's limit of 5000x5000 px "
    "(25,000,000 px); refused before decoding"
)


def test_documented_fastapi_view_refuses_a_decompression_bomb_with_a_422(producer):
    client = TestClient(documented_view(), raise_server_exceptions=False)
    answer = client.post("/edits", json={"prompt": "Add a scarf", "images": [bomb_uri()]})
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"detail": [BOMB_REFUSED]}


def test_an_enqueue_message_with_a_decompression_bomb_records_a_failed_job(producer):
    job_id = new_job_id()
    request = {"prompt": "Add a scarf", "images": [bomb_uri()]}
    producer.celery.send_task(
        ENQUEUE_TASK, kwargs={"job_id": job_id, "request": request}, queue=producer.settings.queue
    )
    job = wait_ended(job_id)
    assert job["status"] == "failed"
    assert job["error"] == {"code": "InvalidRequest", "message": BOMB_REFUSED}
    assert events_of(producer, job_id) == ["job.failed"]
