"""A real worker's JSON log never writes a task's arguments: `wanedit.enqueue` messages carry a
caller's whole request, and whatever the caller put in it stays out of Celery's own lines."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from tests.conftest import make_image
from wanedit.config.celery import ENQUEUE_TASK
from wanedit.config.settings import load_settings
from wanedit.errors import JobNotFound
from wanedit.ids import new_job_id
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers import wait_for_job
from wanedit.sandbox.stack import Worker

pytestmark = pytest.mark.integration
MARKER = "caller-secret-9d41e7"  # in no redaction list: only dropping the arguments hides it


def wait_ended(ctx: ProducerContext, job_id: str) -> str:
    """The job's end; it does not exist until its message has run."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return str(wait_for_job(job_id, 60, context=ctx)["status"])
        except JobNotFound:
            assert time.monotonic() < deadline, f"job {job_id} never made"
            time.sleep(0.2)


def test_a_real_worker_never_logs_the_arguments_of_a_task(stack_env, tmp_path, run_id):
    names = {
        "WANEDIT_QUEUE": f"logs-{run_id}",
        "WANEDIT_KEY_PREFIX": f"logs-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"logs-{run_id}:events",
        "WANEDIT_LOG_FORMAT": "json",
    }
    ctx = build_context(
        load_settings(
            queue=names["WANEDIT_QUEUE"],
            key_prefix=names["WANEDIT_KEY_PREFIX"],
            events_stream=names["WANEDIT_EVENTS_STREAM"],
        )
    )
    image = "data:image/png;base64," + base64.b64encode(make_image(512, 512, (5, 5, 90))).decode()
    good = {"prompt": "logs", "images": [image], "metadata": {"token": MARKER}}
    bad = {"prompt": f"p {MARKER}", "images": ["ftp://x/y.png"], "metadata": {"token": MARKER}}
    log = tmp_path / "w.log"
    worker = Worker({**stack_env, **names}, log_path=log, cwd=Path.cwd()).start()
    try:
        ids = new_job_id(), new_job_id()
        ctx.celery.send_task(ENQUEUE_TASK, args=[ids[0], good], queue=ctx.settings.queue)
        ctx.celery.send_task(
            ENQUEUE_TASK, kwargs={"request": bad, "job_id": ids[1]}, queue=ctx.settings.queue
        )
        ended = [wait_ended(ctx, job_id) for job_id in ids]
    finally:
        worker.stop()
    assert ended == ["succeeded", "failed"]

    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert MARKER not in text
    assert image[30:80] not in text
    enqueue = [line for line in lines if line.get("data", {}).get("name") == ENQUEUE_TASK]
    assert len(enqueue) >= 4, text[-3000:]  # received and ended, for each message
    # The job id stays (the line names its job); the request never appears.
    by_job = {line.get("job_id"): line["data"] for line in enqueue}
    assert by_job[ids[0]]["args"] == f"('{ids[0]}', ***)"
    assert by_job[ids[0]]["kwargs"] == "{}"
    assert {(line["data"]["args"], line["data"]["kwargs"]) for line in enqueue} <= {
        (f"('{ids[0]}', ***)", "{}"),
        ("()", "***"),
    }
