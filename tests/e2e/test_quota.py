"""Across several worker processes: the provider's limits hold, the backlog stays with us, and
an interactive edit overtakes a waiting batch backlog."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from wanedit.producers import get_job, submit_edit, wait_for_job
from wanedit.sandbox.stack import Worker

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
    assert len(waiting_then) >= 10, "the backlog must still have been waiting"
    overtaken = [
        job for job in waiting_then if _when(job, "submitted") > _when(finished, "submitted")
    ]
    # Only jobs admitted before it arrived (each holding one of the 5 provider slots) may still
    # go first: with several workers, a few admitted jobs wait for their submission turns.
    assert len(overtaken) >= len(waiting_then) - 5


def test_daily_cap_keeps_jobs_queued_and_says_why(producer, image_file):
    from wanedit.producers.api import quota, set_daily_cap

    source = str(image_file("cap.png"))
    if quota()["images_today"] == 0:
        wait_for_job(submit_edit(prompt="warm", images=[source]), 60)
    spent = quota()["images_today"]
    set_daily_cap(spent)
    try:
        job_id = submit_edit(prompt="over the cap", images=[source])
        deadline = time.monotonic() + 10
        while not quota()["paused"] and time.monotonic() < deadline:
            time.sleep(0.1)
        job = get_job(job_id)
        assert job["status"] == "queued"
        assert job["waiting_for"].startswith("daily_cap: the daily cap of")

        status = set_daily_cap(spent + 1)
        assert status["daily_image_cap"] == spent + 1
        done = wait_for_job(job_id, 60)
        assert done["status"] == "succeeded"
        assert quota()["images_today"] == spent + 1
    finally:
        set_daily_cap(None)
