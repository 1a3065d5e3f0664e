"""Both ways of noticing that a provider task ended work end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import load_settings
from producers import submit_edit, wait_for_job
from producers.context import build_context
from wanedit.devstack import Worker

pytestmark = pytest.mark.integration


def test_per_task_poll_mode(stack_env, sandbox, tmp_path, image_file, run_id):
    names = {
        "WANEDIT_POLL_MODE": "task",
        "WANEDIT_QUEUE": f"poll-task-{run_id}",
        "WANEDIT_KEY_PREFIX": f"poll-task-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"poll-task-{run_id}:events",
    }
    worker = Worker({**stack_env, **names}, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    try:
        context = build_context(
            load_settings(
                poll_mode="task",
                queue=names["WANEDIT_QUEUE"],
                key_prefix=names["WANEDIT_KEY_PREFIX"],
                events_stream=names["WANEDIT_EVENTS_STREAM"],
            )
        )
        lists_before = sandbox.stats()["lists"]
        jobs = [
            submit_edit(
                prompt=f"task mode {i}", images=[str(image_file(f"t{i}.png"))], context=context
            )
            for i in range(3)
        ]
        done = [wait_for_job(job_id, 60, context=context) for job_id in jobs]
    finally:
        worker.stop()
    assert [job["status"] for job in done] == ["succeeded"] * 3
    assert all(job["polls"] >= 1 for job in done)
    assert sandbox.stats()["lists"] == lists_before  # no list calls in this mode
