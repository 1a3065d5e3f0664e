"""S3 away while results are being stored: retried until it is back, or until the deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.proxy import Outage
from wanedit.producers import get_job, submit_edit
from wanedit.sandbox.stack import Worker

DEADLINE = 6.0


@pytest.fixture(scope="module")
def outage(stack_env: dict[str, str]) -> Iterator[Outage]:
    host, port = stack_env["AWS_ENDPOINT_URL_S3"].removeprefix("http://").split(":")
    proxy = Outage((host, int(port))).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def far_worker(
    stack_env: dict[str, str], outage: Outage, run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """A worker on its own queue that reaches S3 through the switchable endpoint."""
    env = {
        **stack_env,
        "AWS_ENDPOINT_URL_S3": outage.url,
        "WANEDIT_KEY_PREFIX": f"wanedit-outage-{run_id}",
        "WANEDIT_QUEUE": f"wanedit-outage-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"wanedit-outage-{run_id}:events",
        "WANEDIT_FINISH_DEADLINE": str(DEADLINE),
        "WANEDIT_RETRY_BASE": "0.2",
        "WANEDIT_RETRY_CAP": "0.5",
    }
    log = tmp_path_factory.mktemp("outage") / "worker.log"
    worker = Worker(env, concurrency=2, log_path=log, cwd=Path(__file__).parents[2]).start()
    try:
        yield worker
    finally:
        worker.stop()


def _submit_then_cut(
    stack_env: dict[str, str], run_id: str, outage: Outage, prompt: str
) -> tuple[str, float]:
    """Submit through the far worker's queue; cut S3 once the provider task exists."""
    from tests.e2e.conftest import _reset_process_state
    from wanedit.sandbox.stack import patched_env

    with patched_env(
        {
            "WANEDIT_KEY_PREFIX": f"wanedit-outage-{run_id}",
            "WANEDIT_QUEUE": f"wanedit-outage-{run_id}",
            "WANEDIT_EVENTS_STREAM": f"wanedit-outage-{run_id}:events",
        }
    ):
        _reset_process_state()
        try:
            job_id = submit_edit(prompt=prompt, images=[f"s3://wanedit-test/in/{run_id}.png"])
            deadline = time.monotonic() + 30
            while get_job(job_id)["status"] == "queued":
                assert time.monotonic() < deadline, get_job(job_id)
                time.sleep(0.05)
            outage.stop()
            return job_id, time.monotonic()
        finally:
            _reset_process_state()


def _wait_for_end(stack_env: dict[str, str], run_id: str, job_id: str) -> dict:
    from tests.e2e.conftest import _reset_process_state
    from wanedit.sandbox.stack import patched_env

    with patched_env({"WANEDIT_KEY_PREFIX": f"wanedit-outage-{run_id}"}):
        _reset_process_state()
        try:
            deadline = time.monotonic() + 60
            while True:
                job = get_job(job_id)
                if job["status"] in ("succeeded", "failed", "canceled"):
                    return job
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
        finally:
            _reset_process_state()


@pytest.fixture(scope="module")
def input_image(stack_env: dict[str, str], run_id: str) -> None:
    import boto3

    from tests.conftest import make_image

    boto3.client("s3").put_object(
        Bucket="wanedit-test", Key=f"in/{run_id}.png", Body=make_image(512, 512, (10, 120, 60))
    )


def test_a_short_outage_is_waited_out(stack_env, run_id, outage, far_worker, input_image):
    job_id, _cut = _submit_then_cut(stack_env, run_id, outage, "short outage")
    time.sleep(2.0)
    outage.start()
    job = _wait_for_end(stack_env, run_id, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["outputs"][0]["uri"].endswith(f"{job_id}/0.png")


def test_an_outage_past_the_deadline_fails_the_job_clearly(
    stack_env, run_id, outage, far_worker, input_image
):
    job_id, cut = _submit_then_cut(stack_env, run_id, outage, "long outage")
    try:
        job = _wait_for_end(stack_env, run_id, job_id)
        waited = time.monotonic() - cut
    finally:
        outage.start()
    assert job["status"] == "failed"
    assert f"results not stored within {DEADLINE:.0f} s" in job["error"]["message"]
    assert waited >= DEADLINE
