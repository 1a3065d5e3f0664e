"""Scheduled batches on real Redis and S3: one run per schedule slot, however many beats fire."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import make_image
from tests.e2e.conftest import BUCKET
from wanedit.sandbox.stack import patched_env

pytestmark = pytest.mark.integration

SLOT = "2026-11-25T02:30:00+00:00"


@pytest.fixture
def scheduled(stack_env, worker, s3):
    """The `wanedit.batch` task in this process, with one schedule configured."""
    from wanedit.config.settings import get_settings
    from wanedit.intake.context import reset_context as reset_producer
    from wanedit.workers.context import reset_context as reset_worker

    s3.put_object(Bucket=BUCKET, Key="sched/in/1.png", Body=make_image(512, 512, (10, 90, 200)))
    lines = [
        {"prompt": "Make it autumn", "images": [f"s3://{BUCKET}/sched/in/1.png"]},
        {"prompt": "Make it winter", "images": [f"s3://{BUCKET}/sched/in/1.png"], "seed": 3},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    s3.put_object(Bucket=BUCKET, Key="sched/manifest.jsonl", Body=body.encode())
    schedule = {
        "name": "nightly",
        "cron": "30 2 * * *",
        "manifest": f"s3://{BUCKET}/sched/manifest.jsonl",
        "output": f"s3://{BUCKET}/sched-out/",
    }

    def reset() -> None:
        get_settings.cache_clear()
        reset_producer()
        reset_worker()

    with patched_env({"WANEDIT_BATCH_SCHEDULES": json.dumps([schedule])}):
        reset()
        from wanedit.workers.batches import run_scheduled_batch

        try:
            yield run_scheduled_batch
        finally:
            reset()
    reset()


def test_two_beats_for_one_slot_run_the_manifest_once(scheduled, producer):
    from wanedit.intake.batch import batch_status

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: scheduled.run("nightly", SLOT), range(2)))
    assert sorted(results, key=lambda result: result is None) == ["nightly-20261125T0230Z", None]
    assert scheduled.run("nightly", SLOT) is None  # a redelivered message, later

    status = batch_status("nightly-20261125T0230Z")
    assert (status["total"], status["enqueued"], status["invalid"]) == (2, 2, 0)
    assert status["output"] == f"s3://{BUCKET}/sched-out/nightly-20261125T0230Z/"

    # The next night is its own batch, even with the same manifest.
    assert scheduled.run("nightly", "2026-11-26T02:30:00+00:00") == "nightly-20261126T0230Z"
    assert batch_status("nightly-20261126T0230Z")["enqueued"] == 2
