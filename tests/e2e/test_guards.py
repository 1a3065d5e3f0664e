"""The guards end to end: private result URLs, local files, and the size of what is enqueued."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import BUCKET
from wanedit.config.celery import ADMIT_TASK
from wanedit.config.settings import load_settings
from wanedit.ids import new_job_id
from wanedit.images import encode_data_uri
from wanedit.intake.context import build_context
from wanedit.producers import InvalidRequest, submit_edit, wait_for_job
from wanedit.sandbox.stack import Worker
from wanedit.store.events import read_events

pytestmark = pytest.mark.integration
TIMEOUT = 60


def test_strict_worker_refuses_private_result_urls_and_local_paths(
    stack_env, sandbox, tmp_path, image_file, run_id
):
    """With WANEDIT_ALLOW_PRIVATE_URLS=false (production), the sandbox's 127.0.0.1 result URL
    ends the job with UrlNotAllowed, at once; a local path in a job is never read."""
    names = {
        "WANEDIT_ALLOW_PRIVATE_URLS": "false",
        "WANEDIT_QUEUE": f"strict-{run_id}",
        "WANEDIT_KEY_PREFIX": f"strict-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"strict-{run_id}:events",
    }
    worker = Worker({**stack_env, **names}, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    try:
        ctx = build_context(
            load_settings(
                allow_private_urls=False,
                queue=names["WANEDIT_QUEUE"],
                key_prefix=names["WANEDIT_KEY_PREFIX"],
                events_stream=names["WANEDIT_EVENTS_STREAM"],
            )
        )
        downloads = sandbox.stats()["downloads"]
        job_id = submit_edit(prompt="private", images=[str(image_file("u.png"))], context=ctx)
        # A job that names a local file, as a forged or old message might: bypass the producer.
        forged = new_job_id()
        ctx.store.create(
            forged,
            {"prompt": "forged", "images": ["/etc/hostname"], "output": f"s3://{BUCKET}/out/"},
            f"s3://{BUCKET}/out/",
            idempotency_key=None,
            backlog=ctx.store.keys.backlog("interactive"),
        )
        ctx.celery.send_task(ADMIT_TASK, queue=ctx.settings.queue)
        job = wait_for_job(job_id, TIMEOUT, context=ctx)
        forged_job = wait_for_job(forged, TIMEOUT, context=ctx)
    finally:
        worker.stop()

    assert job["status"] == "failed"
    assert job["error"]["code"] == "UrlNotAllowed"
    message = job["error"]["message"]
    assert message.startswith("result 0: refused to fetch from 127.0.0.1: ")
    assert "it resolves to 127.0.0.1: loopback address" in message
    assert "WANEDIT_ALLOW_PRIVATE_URLS" in message
    assert job["outputs"] == [{"index": 0, "error": job["error"]}]
    assert sandbox.stats()["downloads"] == downloads  # nothing was fetched
    events = [e for _, e in read_events(ctx.redis, ctx.settings.events_stream)]
    assert [e["type"] for e in events if e["job_id"] == job_id] == ["job.failed"]
    log = worker.log_path.read_text()
    assert "retry" not in "\n".join(line for line in log.splitlines() if job_id in line)

    assert forged_job["status"] == "failed"
    assert forged_job["error"]["code"] == "InputUnavailable"
    assert (
        "'/etc/hostname' is a local path; workers never read local files"
        in (forged_job["error"]["message"])
    )
    assert forged_job["provider_task_id"] is None  # refused before anything was sent


def test_python_api_reads_local_files_only_below_the_setting(stack_env, image_file, tmp_path):
    elsewhere = tmp_path / "allowed"
    elsewhere.mkdir()
    ctx = build_context(load_settings(local_input_dirs=[str(elsewhere)]))
    source = image_file("outside.png")
    link = elsewhere / "link.png"
    link.symlink_to(source)
    for given in (str(source), str(link), f"{elsewhere}/../{source.name}"):
        with pytest.raises(InvalidRequest) as raised:
            submit_edit(prompt="p", images=[given], context=ctx)
        [problem] = raised.value.problems
        assert problem.startswith(f"images[0]: local file {given}")
        assert f"is outside WANEDIT_LOCAL_INPUT_DIRS ({elsewhere.resolve()})" in problem

    none = build_context(load_settings(local_input_dirs=[]))
    with pytest.raises(InvalidRequest, match="WANEDIT_LOCAL_INPUT_DIRS is empty"):
        submit_edit(prompt="p", images=[str(source)], context=none)


def test_cli_reads_files_named_on_its_command_line(stack_env, worker, image_file, tmp_path):
    """A person at a terminal may name any file they can read; the setting binds the API."""
    source = image_file("named.png")
    env = {**os.environ, **stack_env, "WANEDIT_LOCAL_INPUT_DIRS": str(tmp_path / "elsewhere")}
    result = subprocess.run(
        [sys.executable, "-m", "wanedit.producers.cli", "submit", "--prompt", "p",
         "--image", str(source),
         "--wait", "--timeout", str(TIMEOUT), "--json"],
        env=env, capture_output=True, text=True, timeout=TIMEOUT + 30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"


def test_large_inputs_travel_by_reference_and_requests_are_bounded(producer, s3, tmp_path):
    noisy = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))
    path = tmp_path / "noise.png"
    noisy.save(path)
    data_uri = encode_data_uri(path.read_bytes(), "image/png")
    assert len(data_uri) > 4 * producer.settings.max_request_bytes
    job_id = submit_edit(prompt="big inputs", images=[data_uri, str(path)])
    record = producer.redis.hget(producer.store.keys.job(job_id), "request")
    assert len(record) < 2048
    staged = json.loads(record)["images"]
    assert all(source.startswith(f"s3://{BUCKET}/wanedit-staging/{job_id}/") for source in staged)
    assert wait_for_job(job_id, TIMEOUT)["status"] == "succeeded"

    def staged_objects() -> set[str]:
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="wanedit-staging/")
        return {item["Key"] for item in listing.get("Contents", [])}

    before = staged_objects()
    small = build_context(load_settings(max_request_bytes=4096))
    with pytest.raises(InvalidRequest) as raised:
        submit_edit(
            prompt="x" * 1500,
            images=[str(path)],
            metadata={"note": "y" * 3000},
            context=small,
        )
    [problem] = raised.value.problems
    assert problem.startswith("request: ")
    assert "bytes as stored is over WANEDIT_MAX_REQUEST_BYTES (4096)" in problem
    assert staged_objects() == before  # the staged input was removed again
