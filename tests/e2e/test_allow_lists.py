"""The allow-lists end to end: a request naming a bucket or task the settings do not allow is
refused at intake, and a job record written past intake fails in the worker before its bucket
is read or written and before anything is created at the provider."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.conftest import make_image
from tests.e2e.conftest import BUCKET
from wanedit.config.celery import ADMIT_TASK
from wanedit.config.settings import load_settings
from wanedit.ids import new_job_id
from wanedit.intake.context import build_context
from wanedit.producers import InvalidRequest, submit_edit, wait_for_job
from wanedit.sandbox.stack import Worker

pytestmark = pytest.mark.integration
TIMEOUT = 60


def test_a_job_naming_a_bucket_not_allowed_never_touches_it(stack_env, sandbox, tmp_path, run_id):
    names = {
        "WANEDIT_QUEUE": f"allow-{run_id}",
        "WANEDIT_KEY_PREFIX": f"allow-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"allow-{run_id}:events",
        "WANEDIT_IMAGE_TRANSPORT": "inline",  # the worker would read the input's bytes itself
        # The defaults: only what the settings name themselves.
        "WANEDIT_ON_COMPLETE_TASKS": "",
        "WANEDIT_INPUT_BUCKETS": "",
        "WANEDIT_OUTPUT_BUCKETS": "",
    }
    forbidden = f"forbidden-{run_id}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=forbidden)
    s3.put_object(Bucket=forbidden, Key="secret.png", Body=make_image(512, 512, (1, 2, 3)))
    ctx = build_context(
        load_settings(
            queue=names["WANEDIT_QUEUE"],
            key_prefix=names["WANEDIT_KEY_PREFIX"],
            events_stream=names["WANEDIT_EVENTS_STREAM"],
            on_complete_tasks=[],
            input_buckets=[],
            output_buckets=[],
        )
    )
    request = {
        "prompt": "exfiltrate",
        "images": [f"s3://{forbidden}/secret.png"],
        "output": f"s3://{forbidden}/out/",
        "on_complete": "evil.tasks.run",
    }

    with pytest.raises(InvalidRequest) as refused:
        submit_edit(request, context=ctx)
    assert refused.value.problems == [
        f"images[0]: input bucket '{forbidden}' is not allowed (allowed: {BUCKET}; "
        "the setting WANEDIT_INPUT_BUCKETS adds more)",
        f"output: output bucket '{forbidden}' is not allowed (allowed: {BUCKET}; "
        "the setting WANEDIT_OUTPUT_BUCKETS adds more)",
        "on_complete: task 'evil.tasks.run' is not allowed (allowed: none; "
        "the setting WANEDIT_ON_COMPLETE_TASKS adds more)",
    ]

    # The same request written straight into the store, as a forged message or a record from
    # before the settings changed might be.
    creates = sandbox.stats()["create_requests"]
    worker = Worker({**stack_env, **names}, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    try:
        forged = new_job_id()
        ctx.store.create(
            forged,
            request,
            f"s3://{forbidden}/out/",
            idempotency_key=None,
            backlog=ctx.store.keys.backlog("interactive"),
        )
        ctx.celery.send_task(ADMIT_TASK, queue=ctx.settings.queue)
        job = wait_for_job(forged, TIMEOUT, context=ctx)
    finally:
        worker.stop()

    assert job["status"] == "failed"
    message = job["error"]["message"]
    assert f"images[0]: input bucket '{forbidden}' is not allowed" in message
    assert f"output: output bucket '{forbidden}' is not allowed" in message
    assert job["provider_task_id"] is None
    assert sandbox.stats()["create_requests"] == creates  # nothing was sent to the provider
    listed = s3.list_objects_v2(Bucket=forbidden)["Contents"]
    assert [item["Key"] for item in listed] == ["secret.png"]  # nothing was written there
