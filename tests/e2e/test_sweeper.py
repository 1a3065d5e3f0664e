"""A worker SIGKILLed while it holds a job's poll: the sweeper sends the step again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import make_image
from tests.e2e.conftest import _reset_process_state
from wanedit.producers import get_job, submit_edit
from wanedit.sandbox.stack import Worker, patched_env

TERMINAL = ("succeeded", "failed", "canceled")


@pytest.fixture(scope="module")
def sweep_env(stack_env: dict[str, str], run_id: str) -> Iterator[dict[str, str]]:
    """Its own key prefix and queue, so no other worker can pick its messages up."""
    env = {
        **stack_env,
        "WANEDIT_KEY_PREFIX": f"wanedit-sweep-{run_id}",
        "WANEDIT_QUEUE": f"wanedit-sweep-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"wanedit-sweep-{run_id}:events",
        "WANEDIT_POLL_MODE": "task",  # only the task's own poll chain: nothing else to save it
        "WANEDIT_POLL_FIRST_DELAY": "3",
        "WANEDIT_SWEEP_INTERVAL": "1",
        "WANEDIT_SWEEP_GRACE": "1",
    }
    with patched_env(env):
        _reset_process_state()
        boto3.client("s3").put_object(
            Bucket="wanedit-test",
            Key=f"in/sweep-{run_id}.png",
            Body=make_image(512, 512, (1, 2, 3)),
        )
        try:
            yield env
        finally:
            _reset_process_state()


def test_a_lost_poll_is_sent_again_by_the_sweeper(
    sweep_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from wanedit.intake.context import get_context

    log = tmp_path_factory.mktemp("sweeper") / "worker.log"
    worker = Worker(sweep_env, concurrency=2, log_path=log, cwd=Path(__file__).parents[2])
    worker.start()
    job_id = submit_edit(prompt="sweep me", images=[f"s3://wanedit-test/in/sweep-{run_id}.png"])
    deadline = time.monotonic() + 30
    while get_job(job_id)["status"] == "queued":
        assert time.monotonic() < deadline, get_job(job_id)
        time.sleep(0.05)
    # The first poll is a countdown message held by this worker: SIGKILL loses it (Redis would
    # only give it back after the 3 h visibility timeout).
    worker.kill()
    assert get_job(job_id)["status"] == "submitted"
    worker.start()
    try:
        time.sleep(4)  # past the poll's due time and the grace: nothing will poll it now
        assert get_job(job_id)["status"] == "submitted"
        ctx = get_context()
        ctx.celery.send_task("wanedit.sweep", queue=sweep_env["WANEDIT_QUEUE"])
        deadline = time.monotonic() + 30
        while (job := get_job(job_id))["status"] not in TERMINAL:
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
    finally:
        worker.stop()
    assert job["status"] == "succeeded", job["error"]
    assert "overdue (submitted); sending poll again" in log.read_text()
    record = ctx.redis.hgetall(ctx.store.keys.job(job_id))
    assert record["redrives"] == "1"
    assert ctx.store.due_at(job_id) is None  # a terminal job leaves the due index
