"""A backed-up queue: the job's polls wait in the queue, late by more than the sweeper's
threshold, sweep after sweep. The sweeper never takes that for lost work."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import make_image
from tests.e2e.conftest import _reset_process_state
from tests.worker_app import workers_sending_to
from wanedit.producers import get_job, submit_edit
from wanedit.sandbox.stack import Worker, patched_env

TERMINAL = ("succeeded", "failed", "canceled")
ENDED = ("SUCCEEDED", "FAILED", "CANCELED")
SWEEPS = 12  # more than twice the default WANEDIT_MAX_LOSSES


@pytest.fixture(scope="module")
def backed_up_env(stack_env: dict[str, str], run_id: str) -> Iterator[dict[str, str]]:
    """Its own key prefix and queue: no other worker takes its messages."""
    env = {
        **stack_env,
        "WANEDIT_KEY_PREFIX": f"wanedit-backlog-{run_id}",
        "WANEDIT_QUEUE": f"wanedit-backlog-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"wanedit-backlog-{run_id}:events",
        "WANEDIT_POLL_MODE": "task",  # only the task's own poll chain
        "WANEDIT_POLL_FIRST_DELAY": "3",
        "WANEDIT_SWEEP_INTERVAL": "1",
        "WANEDIT_SWEEP_GRACE": "0.2",
    }
    with patched_env(env):
        _reset_process_state()
        boto3.client("s3").put_object(
            Bucket="wanedit-test",
            Key=f"in/backlog-{run_id}.png",
            Body=make_image(512, 512, (4, 5, 6)),
        )
        try:
            yield env
        finally:
            _reset_process_state()


def test_a_job_whose_polls_wait_in_a_backed_up_queue_is_never_failed_by_the_sweeper(
    backed_up_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from wanedit.config.settings import get_settings
    from wanedit.intake.context import get_context
    from wanedit.workers.context import build_context
    from wanedit.workers.steps.sweep import sweep

    log = tmp_path_factory.mktemp("backlog") / "worker.log"
    worker = Worker(backed_up_env, concurrency=2, log_path=log, cwd=Path(__file__).parents[2])
    worker.start()
    job_id = submit_edit(prompt="wait", images=[f"s3://wanedit-test/in/backlog-{run_id}.png"])
    deadline = time.monotonic() + 30
    while get_job(job_id)["status"] == "queued":
        assert time.monotonic() < deadline, get_job(job_id)
        time.sleep(0.05)
    # No worker takes messages any more: the job's poll waits in the queue, late, with
    # whatever the sweeper sends behind it.
    worker.kill()
    producer = get_context()
    queue = backed_up_env["WANEDIT_QUEUE"]
    producer.celery.send_task("wanedit.poll", args=[job_id], queue=queue)
    ctx = build_context(get_settings())
    job = ctx.store.get(job_id)
    slots = ctx.store.keys.slots(job.account or "")
    with workers_sending_to(ctx.settings):
        for _ in range(SWEEPS):
            # Every sweep finds the job's next step overdue: later than the sweep threshold.
            while (ctx.store.due_at(job_id) or 0.0) > time.time() - ctx.settings.sweep_grace:
                time.sleep(0.05)
            ctx.redis.delete(ctx.store.keys.sweep_lock)  # the next interval's sweep
            sweep(ctx)
    job = ctx.store.get(job_id)
    assert job.status.value == "submitted", job.error
    assert ctx.redis.zscore(slots, job_id) is not None, "its slot was given back"
    assert job.losses == 0 and job.redrives == 1  # one step sent again, then waited for
    assert ctx.redis.llen(queue) >= 2

    worker.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            held = ctx.redis.zscore(slots, job_id) is not None
            record = get_job(job_id)  # read after the slot: a release comes after the answer
            # The slot goes back when the provider task has ended, never while it runs.
            assert held or record["provider_status"] in ENDED, record
            if record["status"] in TERMINAL:
                break
            assert time.monotonic() < deadline, record
            time.sleep(0.1)
    finally:
        worker.stop()
    assert record["status"] == "succeeded", record["error"]
    assert ctx.redis.zscore(slots, job_id) is None  # given back once the task ended
