"""The events mode end to end: the sandbox posts each task's end to the receiver, whose query
is the only one most edits need; with every event lost, the safety-net looks still end every job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from wanedit.config.settings import load_settings
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers import submit_edit, wait_for_job
from wanedit.producers.provider_events import http_server
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker

pytestmark = pytest.mark.integration

TOKEN = "events-e2e-token"
EDITS = 10


def _names(tag: str) -> dict[str, str]:
    return {
        "WANEDIT_QUEUE": tag,
        "WANEDIT_KEY_PREFIX": tag,
        "WANEDIT_EVENTS_STREAM": f"{tag}:events",
    }


def _context(names: dict[str, str]) -> ProducerContext:
    return build_context(
        load_settings(
            queue=names["WANEDIT_QUEUE"],
            key_prefix=names["WANEDIT_KEY_PREFIX"],
            events_stream=names["WANEDIT_EVENTS_STREAM"],
            provider_events_token=TOKEN,
        )
    )


@contextmanager
def receiving(ctx: ProducerContext) -> Iterator[str]:
    """`wanedit provider-events` in a thread: its event URL, with the token as a target has it."""
    server = http_server(ctx, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/events?token={TOKEN}"
    finally:
        server.shutdown()
        server.server_close()


def _run(stack_env, tmp_path, image_file, tag: str, loss: float, **env: str) -> tuple[Any, Any]:
    """EDITS edits with events on; returns the finished jobs and the sandbox's stats."""
    names = {**_names(tag), "WANEDIT_PROVIDER_EVENTS": "true", **env}
    ctx = _context(names)
    worker = None
    with receiving(ctx) as url:
        # The receiver's URL with its token, as an EventBridge HTTP target is configured.
        provider = SandboxServer(
            SandboxConfig(
                api_keys=(SANDBOX_KEY,),
                duration_min=1.0,
                duration_max=2.0,
                seed=11,
                event_url=url,
                event_loss_rate=loss,
            )
        ).start()
        try:
            worker_env = {**stack_env, **names, "DASHSCOPE_HTTP_BASE_URL": provider.base_url}
            worker = Worker(worker_env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
            jobs = [
                submit_edit(
                    prompt=f"events {tag} {i}",
                    images=[str(image_file(f"e{i}.png"))],
                    context=ctx,
                )
                for i in range(EDITS)
            ]
            done = [wait_for_job(job_id, 120, context=ctx) for job_id in jobs]
            stats = provider.stats()
        finally:
            if worker is not None:
                worker.stop()
            provider.stop()
    return done, stats


def test_with_events_each_edit_costs_about_one_query(stack_env, tmp_path, image_file, run_id):
    done, stats = _run(
        stack_env,
        tmp_path,
        image_file,
        f"events-on-{run_id}",
        0.0,
        # With no history yet, the first safety-net look would come after 1.5 x 20 s: the
        # events must be what ends these jobs.
        WANEDIT_PROVIDER_EVENTS_EXPECTED_DURATION="20",
    )
    assert [job["status"] for job in done] == ["succeeded"] * EDITS
    assert stats["events_sent"] >= EDITS
    assert stats["lists"] == 0  # no list watch in this mode
    assert stats["queries"] <= 1.3 * EDITS, stats


def test_with_every_event_lost_the_safety_net_ends_every_job(
    stack_env, tmp_path, image_file, run_id
):
    done, stats = _run(
        stack_env,
        tmp_path,
        image_file,
        f"events-lost-{run_id}",
        1.0,
        # The first looks come 4.5 s after the creates, well after the 1 to 2 s tasks ended.
        WANEDIT_PROVIDER_EVENTS_EXPECTED_DURATION="3",
        WANEDIT_PROVIDER_EVENTS_FALLBACK_INTERVAL="1",
    )
    assert [job["status"] for job in done] == ["succeeded"] * EDITS
    assert stats["events_sent"] == 0
    assert stats["events_lost"] >= EDITS
    assert stats["queries"] >= EDITS
    # The first safety-net looks found tasks ended without their event: the account's list
    # watch ran again for the tasks after them.
    assert stats["lists"] >= 1, stats
    assert "ended without its event; watching" in (tmp_path / "w.log").read_text()


def test_an_event_that_comes_before_its_task_is_recorded_is_not_lost(
    stack_env, tmp_path, image_file, run_id
):
    """Every create's answer is lost: the task ends, and its event arrives, before the look at
    the task list adopts it. Recording the adopted task finds the event and looks at once; the
    safety net alone would not look within the wait (its first look is minutes away)."""
    names = {
        **_names(f"events-early-{run_id}"),
        "WANEDIT_PROVIDER_EVENTS": "true",
        "WANEDIT_PROVIDER_EVENTS_EXPECTED_DURATION": "100000",
        "WANEDIT_RECONCILE_DELAY": "1.5",
    }
    ctx = _context(names)
    worker = None
    with receiving(ctx) as url:
        provider = SandboxServer(
            SandboxConfig(
                api_keys=(SANDBOX_KEY,),
                duration_min=0.2,
                duration_max=0.3,
                seed=5,
                event_url=url,
                lost_answer_rate=1.0,
                lost_answer_modes=("drop",),
                lost_answer_delay=0.0,
            )
        ).start()
        try:
            worker_env = {**stack_env, **names, "DASHSCOPE_HTTP_BASE_URL": provider.base_url}
            worker = Worker(worker_env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
            job_id = submit_edit(
                prompt=f"early {run_id}", images=[str(image_file("early.png"))], context=ctx
            )
            done = wait_for_job(job_id, 60, context=ctx)
            stats = provider.stats()
        finally:
            if worker is not None:
                worker.stop()
            provider.stop()
    assert done["status"] == "succeeded"
    assert stats["creates"] == 1
    assert stats["events_sent"] >= 1
    assert "task ended before it was recorded" in (tmp_path / "w.log").read_text()


def test_the_look_an_event_asks_for_is_tried_again_after_a_transient_error(
    stack_env, tmp_path, image_file, run_id
):
    """The provider throttles every query when the task's event arrives: the event's look is
    tried again after the backoff, well before the safety net's first look (minutes away)."""
    names = {
        **_names(f"events-retry-{run_id}"),
        "WANEDIT_PROVIDER_EVENTS": "true",
        "WANEDIT_PROVIDER_EVENTS_EXPECTED_DURATION": "100000",
    }
    ctx = _context(names)
    worker = None
    with receiving(ctx) as url:
        provider = SandboxServer(
            SandboxConfig(
                api_keys=(SANDBOX_KEY,),
                duration_min=3.0,
                duration_max=3.0,
                seed=3,
                event_url=url,
            )
        ).start()
        try:
            worker_env = {**stack_env, **names, "DASHSCOPE_HTTP_BASE_URL": provider.base_url}
            worker = Worker(worker_env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
            job_id = submit_edit(
                prompt=f"retry {run_id}", images=[str(image_file("retry.png"))], context=ctx
            )
            deadline = time.monotonic() + 30
            while provider.stats()["creates"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            provider.sandbox.update_config({"throttle_rate": 1.0})
            while provider.stats()["events_sent"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            while provider.stats()["throttled"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            provider.sandbox.update_config({"throttle_rate": 0.0})
            done = wait_for_job(job_id, 30, context=ctx)
            stats = provider.stats()
        finally:
            if worker is not None:
                worker.stop()
            provider.stop()
    assert stats["throttled"] >= 1, stats
    assert done["status"] == "succeeded", done
    assert "event's look failed" in (tmp_path / "w.log").read_text()
