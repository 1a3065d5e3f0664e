"""A lost create answer is never paid twice, even when the provider's task list shows a new task
only a moment after the task was made.

The sandbox's `list_delay` (a sandbox-only setting: how soon the provider lists a new task is
undocumented) hides each task from the list for 1.5 s. The reconcile's first look, 1 s after the
answer was lost, finds nothing; only a second look may decide that the create made no task.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import own_stack
from wanedit.producers import submit_edit, wait_for_job
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_listing() -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(
            api_keys=(SANDBOX_KEY,), duration_min=1.0, duration_max=1.5, list_delay=1.5, seed=21
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_an_empty_list_right_after_a_lost_answer_is_not_proof(
    stack_env, slow_listing, tmp_path, image_file, run_id
):
    env, context = own_stack(
        stack_env,
        f"lost-{run_id}",
        slow_listing.base_url,
        {
            "WANEDIT_RECONCILE_DELAY": "1",
            "WANEDIT_RECONCILE_SKEW": "10",
            # Creating again is allowed 1.5 s after the send: the list delay alone is attacked.
            "WANEDIT_HTTP_CONNECT_TIMEOUT": "0.5",
            "WANEDIT_HTTP_READ_TIMEOUT": "1",
            "WANEDIT_RECONCILE_SETTLE": "0",
        },
    )
    worker = Worker(env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    try:
        source = str(image_file("l.png"))
        jobs = [
            submit_edit(prompt=f"lost {trigger}", images=[source], context=context)
            for trigger in ("[sandbox:lost-504]", "[sandbox:lost-drop]", "[sandbox:lost-500]")
        ]
        done = [wait_for_job(job_id, 60, context=context) for job_id in jobs]
        records = [context.redis.hgetall(context.store.keys.job(job_id)) for job_id in jobs]
    finally:
        worker.stop()
    stats = slow_listing.stats()
    assert [job["status"] for job in done] == ["succeeded"] * 3, [job["error"] for job in done]
    assert stats["lost_answers"] == 3
    assert stats["repeated_prompts"] == {}, "an empty list was taken for proof: paid twice"
    assert stats["creates"] == 3
    assert [record.get("reconciled") for record in records] == ["adopted"] * 3
