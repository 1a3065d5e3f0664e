"""Two submit messages for one job never make two provider tasks.

They overlap when a slot's lease runs out while the first message waits (admission gives the
slot again and sends a second message), or when a pool process dies in the middle of a create
(the message is delivered again while the create may still be answered). A proxy passes the
first create on to the sandbox at once, so its task exists, and holds the answer until the test
has sent the second message and seen it handled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Request, Response

from tests.conftest import make_image
from tests.e2e.conftest import own_stack
from tests.e2e.test_lost_answer_attacks import CREATE, Proxy
from wanedit.config.celery import SUBMIT_TASK
from wanedit.images import encode_data_uri
from wanedit.producers import get_job, submit_edit, wait_for_job
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker
from wanedit.states import Status
from wanedit.store.admission import Admission

pytestmark = pytest.mark.integration
# A small PNG as a data URI, for creates made straight at the provider.
IMAGE = encode_data_uri(make_image(512, 512, (9, 9, 9)), "image/png")


class HeldCreate:
    """A scripted answer for a create: the create goes on to the provider at once (its task
    exists and is listed), and the provider's answer is held until `release()`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.passed = threading.Event()
        self._released = threading.Event()
        self.task_id: str | None = None

    def release(self) -> None:
        self._released.set()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        headers = {k: v for k, v in request.headers if k.lower().startswith("x-dashscope")}
        answer = requests.post(
            self.upstream + CREATE,
            data=request.get_data(),
            headers={
                "Authorization": request.headers.get("Authorization", ""),
                "Content-Type": request.headers.get("Content-Type", "application/json"),
                **headers,
            },
            timeout=30,
        )
        self.task_id = answer.json().get("output", {}).get("task_id")
        self.passed.set()
        self._released.wait(60)
        reply = Response(answer.content, answer.status_code, content_type="application/json")
        return reply(environ, start_response)


def hold_first_create(upstream: str) -> tuple[Proxy, HeldCreate]:
    held = HeldCreate(upstream)
    proxy = Proxy(
        upstream, lambda kind, n: held if kind == "create" and n == 1 else None, pass_creates=False
    )
    return proxy, held


def wait_until(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def provider() -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(api_keys=(SANDBOX_KEY,), duration_min=1.0, duration_max=1.5, seed=13)
    ).start()
    try:
        yield server
    finally:
        server.stop()


# The held answer arrives well within the read timeout; a look at the task list may come only
# WANEDIT_RECONCILE_SETTLE after the send, long after it.
SETTINGS = {"WANEDIT_HTTP_READ_TIMEOUT": "30", "WANEDIT_SLOT_LEASE_SECONDS": "10"}


def submit_args(job_id: str, account: str, token: object) -> list[object]:
    """A submit message's arguments (a deployment without admission tokens sends two)."""
    return [job_id, account] if token is None else [job_id, account, token]


def handled(log: Path, line: str, context: Any, job_id: str) -> bool:
    """The second message has run: it logged `line`, or (as it did before) it took the job on."""
    return line in log.read_text(errors="replace") or (
        get_job(job_id, context=context)["status"] != "queued"
    )


def test_a_submit_while_the_first_create_is_in_flight_makes_no_second_task(
    stack_env, provider, tmp_path, image_file, run_id
):
    """The first create's worker is still waiting for its answer when the same message is
    delivered again (its pool process was taken for dead): the copy does not look at the task
    list before that answer could still come, so it neither adopts the task nor creates again."""
    proxy, held = hold_first_create(provider.base_url)
    env, context = own_stack(stack_env, f"overlap-copy-{run_id}", proxy.base_url, SETTINGS)
    log = tmp_path / "w.log"
    worker = Worker(env, log_path=log, cwd=Path.cwd()).start()
    try:
        job_id = submit_edit(prompt="one task", images=[str(image_file("o.png"))], context=context)
        assert held.passed.wait(30)
        record = context.redis.hgetall(context.store.keys.job(job_id))
        args = submit_args(job_id, record["account"], record.get("admit_token"))
        context.celery.send_task(SUBMIT_TASK, args=args, queue=context.settings.queue)
        wait_until(lambda: handled(log, "a create is in flight", context, job_id))
        held.release()
        done = wait_for_job(job_id, 60, context=context)
        record = context.redis.hgetall(context.store.keys.job(job_id))
    finally:
        held.release()
        worker.stop()
        proxy.stop()
    stats = provider.stats()
    assert done["status"] == "succeeded", done["error"]
    assert stats["creates"] == 1, "paid twice"
    assert stats["cancel_requests"] == 0, "the job's own task was canceled"
    assert done["provider_task_id"] == held.task_id
    assert record.get("reconciled") is None


def test_a_submit_message_that_outlived_its_slot_lease_makes_no_second_task(
    stack_env, provider, tmp_path, image_file, run_id
):
    """Admission gave the job a slot, and its submit message waited in the queue past the
    slot's lease; admission reclaimed the slot and gave it again, with a second message. The
    first message, arriving while the second one's create is in flight, cannot pass."""
    proxy, held = hold_first_create(provider.base_url)
    tag = f"overlap-lease-{run_id}"
    env, context = own_stack(stack_env, tag, proxy.base_url, SETTINGS)
    log = tmp_path / "w.log"
    # The job waits in the backlog, with no worker yet to admit it.
    job_id = submit_edit(prompt="one task", images=[str(image_file("l.png"))], context=context)
    # The first admission, made a minute ago by this clock: its 10 s lease is over.
    late = Admission(
        context.redis,
        key_prefix=tag,
        accounts=context.settings.accounts,
        lease_seconds=10,
        batch_max_wait=600,
        daily_image_cap=0,
        clock=lambda: time.time() - 60,
    )
    [first] = late.admit().admitted
    assert first.job_id == job_id
    worker = Worker(env, log_path=log, cwd=Path.cwd()).start()
    try:
        # The worker's admission reclaims the slot, admits the job again and creates.
        assert held.passed.wait(30)
        args = submit_args(job_id, first.account, getattr(first, "token", None))
        context.celery.send_task(SUBMIT_TASK, args=args, queue=context.settings.queue)
        wait_until(lambda: handled(log, "has lapsed (or was given again)", context, job_id))
        held.release()
        done = wait_for_job(job_id, 60, context=context)
        spent = context.admission.spent_today()
    finally:
        held.release()
        worker.stop()
        proxy.stop()
    stats = provider.stats()
    assert done["status"] == "succeeded", done["error"]
    assert stats["creates"] == 1, "paid twice"
    assert stats["cancel_requests"] == 0, "the job's own task was canceled"
    assert done["provider_task_id"] == held.task_id
    # Reserved twice (two admissions), billed once: the day counts the one image.
    assert spent["total"] == 1


def test_a_second_task_never_replaces_the_jobs_task(stack_env, provider, run_id):
    """Should a second create for a job ever make a task, recording it finds the job's task
    already recorded: the job keeps its task, and the second one is canceled at the provider."""
    from wanedit.config.settings import load_settings
    from wanedit.workers.context import build_context
    from wanedit.workers.steps.submit import record_created

    tag = f"second-task-{run_id}"
    ctx = build_context(
        load_settings(
            key_prefix=tag,
            queue=tag,
            events_stream=f"{tag}:events",
            dashscope_http_base_url=provider.base_url,
            poll_mode="task",
        )
    )
    client = ctx.providers["default"]
    made = [
        client.create(ctx.settings.model, {"input": {"prompt": f"t{i}", "images": [IMAGE]}})[0]
        for i in range(2)
    ]
    job_id = f"second-{run_id}"
    ctx.store.create(job_id, {"prompt": "p", "images": [IMAGE]}, "s3://b/out/")
    read_before = ctx.store.get(job_id)  # what the second create's worker read
    first = {"provider_task_id": made[0], "provider_status": "PENDING"}
    assert ctx.store.transition(read_before, Status.SUBMITTED, first)
    record_created(ctx, read_before, "default", made[1], None)

    job = ctx.store.get(job_id)
    assert (job.status, job.provider_task_id) == (Status.SUBMITTED, made[0])
    assert provider.stats()["cancel_requests"] == 1
