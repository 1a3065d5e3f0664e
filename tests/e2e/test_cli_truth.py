"""The `wanedit` console script tells how a job stands: status exits by the job's outcome,
cancel says what became of the request, --wait shows each change, --webhook-url is
--callback-url. Run as real processes against a real worker, Redis, S3 and the sandbox."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import requests

from tests.e2e.test_cli import wanedit
from tests.receiver import webhook_receiver
from wanedit.producers import get_job, submit_edit, wait_for_job
from wanedit.producers.cli.cancel_outcome import TOO_LATE
from wanedit.sandbox.stack import SANDBOX_KEY
from wanedit.workers.client import ProviderClient, make_session

pytestmark = pytest.mark.integration

CHANGE = re.compile(r"^\[ *(?P<seconds>\d+\.\d) s\] (?:(?P<before>\w+) -> )?(?P<status>\w+)$")


@pytest.fixture
def slow_sandbox(sandbox):
    """Provider tasks take 6 s: long enough to see them PENDING and RUNNING from a process."""
    config_url = sandbox.base_url.removesuffix("/api/v1") + "/sandbox/config"
    requests.post(config_url, json={"duration_min": 6.0, "duration_max": 6.0}, timeout=5)
    yield sandbox
    requests.post(config_url, json={"duration_min": 0.5, "duration_max": 1.5}, timeout=5)


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_status_exits_by_the_jobs_outcome(stack_env, worker, producer, image_file):
    source = str(image_file("st.png"))
    done = submit_edit(prompt="status ok", images=[source])
    failed = submit_edit(prompt="[sandbox:fail] status", images=[source])
    waiting = uuid.uuid4().hex  # recorded, never in a backlog: it stays queued
    producer.store.create(waiting, {"prompt": "p", "images": ["https://x/a.png"]}, "s3://b/p/")
    canceled = uuid.uuid4().hex
    producer.store.create(canceled, {"prompt": "p", "images": ["https://x/a.png"]}, "s3://b/p/")
    assert wanedit(stack_env, "cancel", canceled).returncode == 0
    for job_id in (done, failed):
        wait_for_job(job_id, 60)

    codes = {
        name: wanedit(stack_env, "status", job_id).returncode
        for name, job_id in [
            ("succeeded", done),
            ("failed", failed),
            ("canceled", canceled),
            ("queued", waiting),
            ("missing", "0" * 32),
        ]
    }
    assert codes == {"succeeded": 0, "failed": 1, "canceled": 5, "queued": 6, "missing": 4}


def test_cancel_of_a_queued_job_and_then_again(stack_env, worker, producer):
    job_id = uuid.uuid4().hex
    producer.store.create(job_id, {"prompt": "p", "images": ["https://x/a.png"]}, "s3://b/p/")

    first = wanedit(stack_env, "cancel", job_id)
    again = wanedit(stack_env, "cancel", job_id, "--json")

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == "canceled before it was sent; nothing is billed"
    assert get_job(job_id)["status"] == "canceled"
    assert again.returncode == 8
    assert json.loads(again.stdout)["cancel_outcome"] == "already_ended"
    plain = wanedit(stack_env, "cancel", job_id)
    assert plain.stdout.splitlines()[0] == "already canceled: the job had ended; nothing changed"


def test_cancel_of_a_running_task_says_too_late(stack_env, worker, slow_sandbox, image_file):
    job_id = submit_edit(prompt="too late for the cli", images=[str(image_file("tl.png"))])
    wait_until(lambda: get_job(job_id)["status"] == "running")

    result = wanedit(stack_env, "cancel", job_id)

    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines()[0] == TOO_LATE
    assert "submitted" not in result.stdout.splitlines()[0]
    delivered = wait_for_job(job_id, 60)
    assert delivered["status"] == "succeeded"
    assert delivered["cancel_refused"]


def test_cancel_of_a_pending_task_cancels_it_or_says_it_is_requested(
    stack_env, worker, slow_sandbox, image_file
):
    # Another system on the same account fills the provider's five slots: ours wait PENDING.
    from tests.conftest import make_image
    from wanedit.images import encode_data_uri

    outsider = ProviderClient(make_session(), slow_sandbox.base_url, SANDBOX_KEY)
    image = encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png")
    for _ in range(5):
        outsider.create("wan2.5-i2i-preview", {"input": {"prompt": "x", "images": [image]}})
        time.sleep(0.21)
    source = str(image_file("pd.png"))
    pending = submit_edit(prompt="cancel me from the cli", images=[source])
    later = submit_edit(prompt="cancel me later", images=[source])
    for job_id in (pending, later):
        task_id = wait_until(lambda job_id=job_id: get_job(job_id)["provider_task_id"])
        assert outsider.get(task_id).status == "PENDING"

    canceled = wanedit(stack_env, "cancel", pending)
    requested = wanedit(stack_env, "cancel", later, "--timeout", "0")

    assert canceled.returncode == 0, canceled.stderr
    assert canceled.stdout.splitlines()[0] == "canceled at the provider; nothing is billed"
    assert requested.returncode == 6, requested.stderr
    assert requested.stdout.splitlines()[0].startswith(
        "cancel requested: the provider has not answered yet; the task is canceled if it has "
        "not started"
    )
    # Requested, then settled by the worker: the job ends canceled.
    assert wait_for_job(later, 30)["status"] == "canceled"


def test_submit_wait_shows_each_change_on_stderr_and_only_json_on_stdout(
    stack_env, worker, slow_sandbox, image_file
):
    result = wanedit(
        stack_env, "submit", "--prompt", "show me", "--image", str(image_file("w.png")),
        "-n", "2", "--wait", "--timeout", "60", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)  # nothing but the final JSON
    assert job["status"] == "succeeded"
    assert job["usage"]["image_count"] == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"job {job['id']}"
    changes = [CHANGE.match(line) for line in lines[1:]]
    assert all(changes), lines
    statuses = [m["status"] for m in changes if m]
    assert statuses == ["queued", "submitted", "running", "succeeded"]
    assert [m["before"] for m in changes if m] == [None, "queued", "submitted", "running"]
    seconds = [float(m["seconds"]) for m in changes if m]
    assert seconds == sorted(seconds) and seconds[-1] >= 5.0


def test_submit_wait_exits_6_when_it_times_out(stack_env, worker, slow_sandbox, image_file):
    timed_out = wanedit(
        stack_env, "submit", "--prompt", "slow", "--image", str(image_file("to.png")),
        "--wait", "--timeout", "1",
    )  # fmt: skip
    assert timed_out.returncode == 6, timed_out.stderr
    assert "timed out after 1.0 s; the job goes on" in timed_out.stderr


def test_webhook_url_is_callback_url(stack_env, worker, producer, image_file):
    with webhook_receiver() as receiver:
        result = wanedit(
            stack_env, "submit", "--prompt", "hook", "--image", str(image_file("h.png")),
            "--webhook-url", receiver.url, "--json",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        job = json.loads(result.stdout)
        assert job["request"]["webhook_url"] == job["request"]["callback_url"] == receiver.url
        assert wait_for_job(job["id"], 60)["status"] == "succeeded"
        wait_until(lambda: get_job(job["id"])["webhook_status"] == "delivered")
    assert [got.headers["webhook-id"] for got in receiver.received] == [
        f"{job['id']}:job.succeeded"
    ]

    both = wanedit(
        stack_env, "submit", "--prompt", "hook", "--image", str(image_file("h.png")),
        "--webhook-url", "https://a.example.com/hook",
        "--callback-url", "https://b.example.com/hook",
    )  # fmt: skip
    assert both.returncode == 2
    assert "callback_url and webhook_url: two names of the same field" in both.stderr
    same = submit_edit(
        prompt="hook",
        images=[str(image_file("h.png"))],
        webhook_url=receiver.url,
        callback_url=receiver.url,
    )
    assert get_job(same)["request"]["webhook_url"] == receiver.url


def test_top_and_quota_show_the_same_cost_today(stack_env, producer, run_id):
    from wanedit.store.admission import utc_day
    from wanedit.store.keys import Keys

    tag = f"cost-{run_id}"
    env = {**stack_env, "WANEDIT_KEY_PREFIX": tag}
    keys = Keys(tag)
    # Three images counted today (reserved at admission, or billed); and an all-time cost
    # counter that also holds earlier days: top used to show that one.
    producer.redis.hset(keys.spend(utc_day(time.time())), mapping={"default": 3, "total": 3})
    producer.redis.hset(keys.metrics, "cost_total|account=default|currency=CNY", "5.0")

    quota = wanedit(env, "quota", "--json")
    top = wanedit(env, "top", "--once")

    assert quota.returncode == 0 and top.returncode == 0, quota.stderr + top.stderr
    [account] = json.loads(quota.stdout)["accounts"]
    figure = f"{account['cost_today']:.2f} {account['currency']}"
    assert account["images_today"] == 3 and figure != "0.00 CNY"
    assert figure in wanedit(env, "quota").stdout
    [cost_line] = [line for line in top.stdout.splitlines() if line.startswith("cost today")]
    assert cost_line.split(None, 2)[2] == figure


def test_cancel_while_the_create_is_in_flight_is_requested_then_settled(
    stack_env, tmp_path, image_file, run_id
):
    """The create is on its way when the cancel comes: the CLI says the cancel is requested
    (exit 6); once the create is answered, the task, still PENDING, is canceled."""
    from tests.conftest import make_image
    from tests.e2e.test_cancel import _in_flight_stack
    from wanedit.images import encode_data_uri
    from wanedit.sandbox.server import SandboxConfig, SandboxServer

    # One provider slot, taken by another system's long task: ours waits there as PENDING.
    provider = SandboxServer(
        SandboxConfig(
            api_keys=(SANDBOX_KEY,), concurrency=1, duration_min=20.0, duration_max=20.0, seed=8
        )
    ).start()
    outsider = ProviderClient(make_session(), provider.base_url, SANDBOX_KEY)
    image = encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png")
    outsider.create("wan2.5-i2i-preview", {"input": {"prompt": "x", "images": [image]}})
    tag = f"cli-flight-{run_id}"
    proxy, held, context, worker = _in_flight_stack(stack_env, provider, tag, tmp_path)
    env = {
        **stack_env,
        "WANEDIT_QUEUE": tag,
        "WANEDIT_KEY_PREFIX": tag,
        "WANEDIT_EVENTS_STREAM": f"{tag}:events",
    }
    try:
        job_id = submit_edit(prompt="cancel me", images=[str(image_file("f.png"))], context=context)
        assert held.passed.wait(30)
        asked = wanedit(env, "cancel", job_id, "--timeout", "0")
        held.release()
        settled = wanedit(env, "status", job_id)
        deadline = time.monotonic() + 30
        while settled.returncode == 6 and time.monotonic() < deadline:
            time.sleep(0.2)
            settled = wanedit(env, "status", job_id)
    finally:
        held.release()
        worker.stop()
        proxy.stop()
        provider.stop()
    assert asked.returncode == 6, asked.stderr
    assert asked.stdout.splitlines()[0].startswith(
        "cancel requested: a create is in flight; once the provider answers, its task is "
        "canceled if it has not started"
    )
    assert settled.returncode == 5, settled.stdout
    assert f"{job_id}  canceled" in settled.stdout
