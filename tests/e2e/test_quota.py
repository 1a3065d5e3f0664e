"""Across several worker processes: the provider's limits hold, the backlog stays with us, and
an interactive edit overtakes a waiting batch backlog."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from producers import get_job, submit_edit, wait_for_job
from wanedit.devstack import Worker

pytestmark = pytest.mark.integration
BATCH = 30


def _when(job: dict, status: str) -> datetime:
    return datetime.fromisoformat(job["timestamps"][status])


@pytest.fixture
def more_workers(stack_env, worker, tmp_path):
    extra = [
        Worker(stack_env, concurrency=1, log_path=tmp_path / f"w{i}.log", cwd=Path.cwd()).start()
        for i in range(2)
    ]
    yield extra
    for process in extra:
        process.stop()


def test_limits_hold_across_processes_and_interactive_overtakes(
    producer, sandbox, more_workers, image_file
):
    def busy() -> int:
        counts = sandbox.stats()["tasks_by_status"]
        return counts.get("RUNNING", 0) + counts.get("PENDING", 0)

    deadline = time.monotonic() + 30
    while busy() and time.monotonic() < deadline:
        time.sleep(0.1)
    before = sandbox.stats()
    peaks = {"running": 0, "pending": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            counts = sandbox.stats()["tasks_by_status"]
            peaks["running"] = max(peaks["running"], counts.get("RUNNING", 0))
            peaks["pending"] = max(peaks["pending"], counts.get("PENDING", 0))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        source = str(image_file("b.png"))
        batch = [
            submit_edit(prompt=f"batch {i}", images=[source], priority="batch")
            for i in range(BATCH)
        ]
        time.sleep(1.0)  # the backlog is being worked through
        person = submit_edit(prompt="a person waits", images=[source])
        finished = wait_for_job(person, 60)
        batch_jobs = [wait_for_job(job_id, 120) for job_id in batch]
    finally:
        stop.set()
        sampler.join()
    after = sandbox.stats()

    assert finished["status"] == "succeeded"
    assert all(job["status"] == "succeeded" for job in batch_jobs)
    # The provider never saw more than 5 at once, nothing waited in its queue, no 429.
    assert peaks["running"] <= 5
    assert peaks["pending"] == 0
    assert after["throttled"] - before["throttled"] == 0
    # Batch jobs still waiting when the person's edit arrived were submitted after it.
    arrived = _when(get_job(person), "queued")
    waiting_then = [job for job in batch_jobs if _when(job, "submitted") > arrived]
    assert len(waiting_then) >= 5, "the backlog must still have been waiting"
    overtaken = [
        job for job in waiting_then if _when(job, "submitted") > _when(finished, "submitted")
    ]
    assert len(overtaken) >= len(waiting_then) - 1  # at most one was already admitted
