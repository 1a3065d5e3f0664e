"""A worker lost in the middle of a create leaves a job the sweeper sees, and the sweeper's
reconcile adopts the one task that create made."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import own_stack
from tests.e2e.test_overlapping_submits import hold_first_create, wait_until
from wanedit.config.celery import SWEEP_TASK
from wanedit.producers import submit_edit, wait_for_job
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker

pytestmark = pytest.mark.integration


@pytest.fixture
def provider() -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(api_keys=(SANDBOX_KEY,), duration_min=1.0, duration_max=1.5, seed=17)
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_worker_lost_mid_create_leaves_a_job_the_sweeper_sees(
    stack_env, provider, tmp_path, image_file, run_id
):
    proxy, held = hold_first_create(provider.base_url)
    env, context = own_stack(
        stack_env,
        f"crash-create-{run_id}",
        proxy.base_url,
        {
            "WANEDIT_POLL_MODE": "task",
            "WANEDIT_HTTP_CONNECT_TIMEOUT": "0.5",
            "WANEDIT_HTTP_READ_TIMEOUT": "3",
            "WANEDIT_RECONCILE_SETTLE": "0",
            "WANEDIT_SWEEP_GRACE": "1",
        },
    )
    worker = Worker(env, log_path=tmp_path / "w1.log", cwd=Path.cwd()).start()
    try:
        job_id = submit_edit(prompt="crash", images=[str(image_file("c.png"))], context=context)
        assert held.passed.wait(30)
        # The machine is lost while the create waits for its answer (the task exists).
        worker.kill()
        held.release()
        due = context.store.due_at(job_id)
        assert due is not None, "a job whose create was sent is invisible to the sweeper"
        assert context.store.get(job_id).status.value == "queued"

        worker = Worker(env, log_path=tmp_path / "w2.log", cwd=Path.cwd()).start()
        wait_until(lambda: time.time() > due + 1.5, timeout=60)
        context.celery.send_task(SWEEP_TASK, queue=context.settings.queue)
        done = wait_for_job(job_id, 60, context=context)
        record = context.redis.hgetall(context.store.keys.job(job_id))
    finally:
        held.release()
        worker.stop()
        proxy.stop()
    assert done["status"] == "succeeded", done["error"]
    assert provider.stats()["creates"] == 1
    assert done["provider_task_id"] == held.task_id
    assert record.get("reconciled") == "adopted"
