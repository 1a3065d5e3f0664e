"""The `wanedit` console script, run as a real process against the running stack."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration


def wanedit(
    stack_env: dict[str, str], *args: str, timeout: float = 90
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wanedit.producers.cli", *args],
        env={**os.environ, **stack_env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_submit_wait_json_prints_the_finished_job(stack_env, worker, image_file):
    source = image_file("cli.png", 600, 400)
    result = wanedit(
        stack_env,
        "submit", "--prompt", "Add a hat", "--image", str(source), "--n", "2",
        "--size", "1024*768", "--metadata", '{"order": "A1"}',
        "--wait", "--timeout", "60", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded"
    assert job["provider_task_id"]
    assert [output["index"] for output in job["outputs"]] == [0, 1]
    assert job["error"] is None
    assert job["usage"]["image_count"] == 2
    assert job["usage"]["cost"] == 0.440354
    assert job["metadata"] == {"order": "A1"}

    status = wanedit(stack_env, "status", job["id"], "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["outputs"] == job["outputs"]

    events = wanedit(stack_env, "events", "--json")
    assert events.returncode == 0
    mine = [json.loads(line) for line in events.stdout.splitlines() if job["id"] in line]
    assert [event["type"] for event in mine] == ["job.succeeded"]


def test_submit_without_wait_prints_the_job_id(stack_env, worker, image_file):
    result = wanedit(stack_env, "submit", "--prompt", "p", "--image", str(image_file("x.png")))
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert len(job_id) == 32


def test_failed_job_exits_1(stack_env, worker, image_file):
    result = wanedit(
        stack_env, "submit", "--prompt", "[sandbox:fail] p", "--image", str(image_file("y.png")),
        "--wait", "--timeout", "60",
    )  # fmt: skip
    assert result.returncode == 1
    assert "failed" in result.stdout
    assert "InternalError.Algo" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "5"], "invalid request: n: 5 is outside 1 to 4 images"),
        (["--size", "100*100"], "invalid request: size: 100*100 is 10000 pixels"),
        (["--metadata", "{oops"], "invalid request: metadata: not valid JSON"),
        (["--seed", "-4"], "invalid request: seed: -4 is outside 0 to 2147483647"),
        (["--callback-url", "ftp://x/y"], "invalid request: callback_url: scheme 'ftp'"),
        (["--on-complete", "not a task!"], "invalid request: on_complete: 'not a task!' is not"),
    ],
)
def test_invalid_request_exits_2_and_enqueues_nothing(
    stack_env, producer, image_file, args, message
):
    before = producer.redis.llen(producer.settings.queue)
    result = wanedit(
        stack_env, "submit", "--prompt", "p", "--image", str(image_file("z.png")), *args
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert producer.redis.llen(producer.settings.queue) == before


def test_submit_sends_the_completion_event_to_the_on_complete_task(
    stack_env, worker, producer, image_file, run_id
):
    queue = f"cli-on-complete-{run_id}"  # nobody consumes it: the message waits there
    result = wanedit(
        stack_env, "submit", "--prompt", "[sandbox:fail] callback", "--image",
        str(image_file("oc.png")), "--on-complete", "myapp.tasks.on_edit",
        "--on-complete-queue", queue, "--wait", "--timeout", "60", "--json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    job = json.loads(result.stdout)
    assert job["request"]["on_complete"] == "myapp.tasks.on_edit"
    deadline = time.monotonic() + 30
    while producer.redis.llen(queue) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    message = json.loads(producer.redis.lpop(queue))
    assert message["headers"]["task"] == "myapp.tasks.on_edit"
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert [(event["job_id"], event["type"]) for event in args] == [(job["id"], "job.failed")]


def test_missing_local_file_exits_2(stack_env, producer):
    result = wanedit(stack_env, "submit", "--prompt", "p", "--image", "/no/such/file.png")
    assert result.returncode == 2
    assert "images[0]: cannot read local file '/no/such/file.png'" in result.stderr


def test_unknown_job_status_exits_4(stack_env, worker):
    result = wanedit(stack_env, "status", "0" * 32)
    assert result.returncode == 4
    assert "does not exist" in result.stderr


def test_unreachable_redis_is_a_clear_error(stack_env, image_file):
    env = {**stack_env, "WANEDIT_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = wanedit(env, "submit", "--prompt", "p", "--image", str(image_file("r.png")))
    assert result.returncode == 3
    assert "Redis cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr


def test_priority_and_quota_commands(stack_env, worker, image_file):
    result = wanedit(
        stack_env, "submit", "--prompt", "p", "--image", str(image_file("p.png")),
        "--priority", "batch", "--wait", "--timeout", "60", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["priority"] == "batch"

    quota = wanedit(stack_env, "quota", "--json")
    assert quota.returncode == 0, quota.stderr
    data = json.loads(quota.stdout)
    [account] = data["accounts"]
    assert (account["name"], account["concurrency"], account["currency"]) == ("default", 5, "CNY")
    assert data["images_today"] >= 1
    assert account["cost_today"] == pytest.approx(account["images_today"] * 0.220177)

    human = wanedit(stack_env, "quota")
    assert "in flight" in human.stdout

    bad = wanedit(stack_env, "submit", "--prompt", "p", "--image", "x.png", "--priority", "urgent")
    assert bad.returncode == 2
    assert wanedit(stack_env, "cap").returncode == 2
