"""SIGTERM, as Kubernetes and Compose send it to the worker's main process, with the
`REMAP_SIGTERM=SIGQUIT` the deployment files set: a soft shutdown bounded by
WANEDIT_SOFT_SHUTDOWN_TIMEOUT, which loses nothing and never pays twice."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import requests

from wanedit.config.settings import load_settings
from wanedit.intake.context import build_context
from wanedit.producers import submit_edit, wait_for_job
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker

pytestmark = pytest.mark.integration

ANSWER_DELAY = 10.0  # the provider holds the create's answer this long
SOFT_TIMEOUT = 2.0
READ_TIMEOUT = 2 * ANSWER_DELAY
# A create whose worker died is looked for only once its answer could no longer arrive: the
# connect + read timeout after the send (the settle time is set below that).
WAIT = READ_TIMEOUT + 60.0


def test_sigterm_is_a_bounded_soft_shutdown_that_loses_nothing(
    stack_env, tmp_path, image_file, run_id
):
    # Every create's answer is held back: the worker's submit task is busy in the call when
    # the signal comes.
    provider = SandboxServer(
        SandboxConfig(
            api_keys=(SANDBOX_KEY,),
            duration_min=0.5,
            duration_max=1.0,
            lost_answer_rate=1.0,
            lost_answer_modes=("late",),
            lost_answer_delay=ANSWER_DELAY,
            seed=5,
        )
    ).start()
    tag = f"shutdown-{run_id}"
    env = {
        **stack_env,
        "DASHSCOPE_HTTP_BASE_URL": provider.base_url,
        "WANEDIT_HTTP_READ_TIMEOUT": str(READ_TIMEOUT),
        "WANEDIT_RECONCILE_SETTLE": "1",
        "WANEDIT_SOFT_SHUTDOWN_TIMEOUT": str(SOFT_TIMEOUT),
        "WANEDIT_QUEUE": tag,
        "WANEDIT_KEY_PREFIX": tag,
        "WANEDIT_EVENTS_STREAM": f"{tag}:events",
    }
    log = tmp_path / "worker.log"
    first = Worker({**env, "REMAP_SIGTERM": "SIGQUIT"}, log_path=log, cwd=Path.cwd()).start()
    second: Worker | None = None
    try:
        context = build_context(
            load_settings(
                dashscope_http_base_url=provider.base_url,
                queue=tag,
                key_prefix=tag,
                events_stream=f"{tag}:events",
            )
        )
        job_id = submit_edit(
            prompt="shutdown", images=[str(image_file("shutdown.png"))], context=context
        )
        deadline = time.monotonic() + 30
        while provider.stats()["creates"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert provider.stats()["creates"] == 1, first.tail()

        assert first.process is not None
        signalled = time.monotonic()
        os.kill(first.process.pid, signal.SIGTERM)  # the main process only, as a kubelet does
        first.process.wait(timeout=ANSWER_DELAY)
        took = time.monotonic() - signalled
        # Bounded by the soft shutdown timeout, not by the task: a warm shutdown would wait for
        # the held answer.
        assert took < SOFT_TIMEOUT + 6.0, (took, first.tail())
        assert "soft shutdown" in log.read_text(errors="replace").lower(), first.tail()

        # The provider answers again; a new worker takes the message back and, since a create
        # may have gone out, reconciles instead of creating again.
        requests.post(
            f"{provider.host_url}/sandbox/config",
            data=json.dumps({"lost_answer_rate": 0.0}),
            timeout=5,
        ).raise_for_status()
        second = Worker(env, log_path=log, cwd=Path.cwd()).start()
        done = wait_for_job(job_id, WAIT, context=context)
    finally:
        first.kill()
        if second:
            second.stop()
        provider.stop()
    assert done["status"] == "succeeded", done
    assert provider.stats()["creates"] == 1  # one provider task, adopted: paid once
