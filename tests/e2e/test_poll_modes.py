"""Both ways of noticing that a provider task ended work end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wanedit.config.settings import load_settings
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers import submit_edit, wait_for_job
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker

pytestmark = pytest.mark.integration


def _own_names(tag: str) -> dict[str, str]:
    """A queue, key prefix and event stream of the test's own: its worker sees only its jobs."""
    return {
        "WANEDIT_QUEUE": tag,
        "WANEDIT_KEY_PREFIX": tag,
        "WANEDIT_EVENTS_STREAM": f"{tag}:events",
    }


def _context(names: dict[str, str], **settings: Any) -> ProducerContext:
    return build_context(
        load_settings(
            queue=names["WANEDIT_QUEUE"],
            key_prefix=names["WANEDIT_KEY_PREFIX"],
            events_stream=names["WANEDIT_EVENTS_STREAM"],
            **settings,
        )
    )


def test_per_task_poll_mode(stack_env, sandbox, tmp_path, image_file, run_id):
    names = {"WANEDIT_POLL_MODE": "task", **_own_names(f"poll-task-{run_id}")}
    worker = Worker({**stack_env, **names}, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    try:
        context = _context(names, poll_mode="task")
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


def test_list_mode_fallback_polls_stay_quiet_while_the_watch_sees_the_tasks(
    stack_env, tmp_path, image_file, run_id
):
    """Each task keeps slow polls of its own in case the list watch stops. While the watch sees
    the task, they only book their next turn: the provider is asked once per task for its
    results, plus the list calls, not once per fallback turn."""
    slow = SandboxServer(
        SandboxConfig(api_keys=(SANDBOX_KEY,), duration_min=3.0, duration_max=3.5, seed=3)
    ).start()
    names = {
        "DASHSCOPE_HTTP_BASE_URL": slow.base_url,
        # Fallback polls from 0.4 s, then every 0.3 s: about 10 turns per task.
        "WANEDIT_POLL_FIRST_DELAY": "0.2",
        "WANEDIT_POLL_INTERVAL": "0.2",
        "WANEDIT_POLL_MAX_INTERVAL": "0.3",
        **_own_names(f"poll-quiet-{run_id}"),
    }
    worker = Worker({**stack_env, **names}, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    try:
        context = _context(names, dashscope_http_base_url=slow.base_url)
        jobs = [
            submit_edit(prompt=f"quiet {i}", images=[str(image_file(f"q{i}.png"))], context=context)
            for i in range(4)
        ]
        done = [wait_for_job(job_id, 60, context=context) for job_id in jobs]
        stats = slow.stats()
    finally:
        worker.stop()
        slow.stop()
    assert [job["status"] for job in done] == ["succeeded"] * 4
    assert stats["lists"] >= 3
    # One result query per task, and a few single-task looks when only one task is due; the
    # fallback turns alone would have made about 40.
    assert stats["queries"] <= 2 * len(jobs), stats
