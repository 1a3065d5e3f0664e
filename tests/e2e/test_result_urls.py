"""Results people can open: with WANEDIT_RESULT_URL_TTL set, the event, the webhook, `get_job`,
`wanedit status` and `wanedit url` give a presigned GET URL per output, which opens the PNG with
no credentials at all. A real worker, moto's S3 server, the sandbox over HTTP."""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from tests.e2e.conftest import own_stack
from tests.e2e.test_cli import wanedit
from tests.receiver import webhook_receiver
from wanedit.producers import get_job, submit_edit, wait_for_job
from wanedit.sandbox.stack import Worker
from wanedit.storage import S3Location
from wanedit.store.events import read_events

pytestmark = pytest.mark.integration
TTL = 900


def expires(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Expires"][0]


def fetched(url: str) -> bytes:
    """GET with plain requests: no credentials, no boto3."""
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text[:300]
    return answer.content


def stored(s3: Any, uri: str) -> bytes:
    where = S3Location.parse_object(uri)
    return bytes(s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read())


def test_every_way_of_reading_a_result_gives_a_url_that_opens_it(
    stack_env, sandbox, s3, image_file, tmp_path, run_id
):
    tag = f"urls-{run_id}"
    env, context = own_stack(stack_env, tag, sandbox.base_url, {"WANEDIT_RESULT_URL_TTL": str(TTL)})
    # This process signs as the worker does (get_job reads the setting from its context).
    context = replace(context, settings=context.settings.model_copy(update={"result_url_ttl": TTL}))
    worker = Worker(env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    try:
        with webhook_receiver() as receiver:
            job_id = submit_edit(
                prompt="open me", images=[str(image_file("u.png"))], n=2,
                callback_url=receiver.url, context=context,
            )  # fmt: skip
            job = wait_for_job(job_id, 60, context=context)
            failed_id = submit_edit(
                prompt="[sandbox:output-fail] nothing to open",
                images=[str(image_file("f.png"))],
                context=context,
            )
            failed = wait_for_job(failed_id, 60, context=context)
            hooked = _delivered(job_id, context)
        status = wanedit(env, "status", job_id)
        printed = wanedit(env, "url", job_id, "--ttl", "120")
        none = wanedit(env, "url", failed_id)
        bad = wanedit(env, "url", job_id, "--ttl", "604801")
    finally:
        worker.stop()
    assert job["status"] == "succeeded" and failed["status"] == "failed"
    assert hooked["webhook_status"] == "delivered"

    # The event (and the webhook, which carries it) has a URL beside each s3:// URI.
    [event] = [
        e for _, e in read_events(context.redis, context.settings.events_stream)
        if e["job_id"] == job_id
    ]  # fmt: skip
    [hook] = [json.loads(got.body) for got in receiver.received]
    assert hook["outputs"] == event["outputs"]
    assert len(event["outputs"]) == 2
    for output in event["outputs"]:
        assert output["uri"].startswith("s3://") and output["url_expires_at"]
        assert expires(output["url"]) == str(TTL)
        png = fetched(output["url"])
        assert png.startswith(b"\x89PNG") and png == stored(s3, output["uri"])
        # The thumbnail beside it, a small JPEG, opens too.
        assert output["thumbnail"] == output["uri"].removesuffix(".png") + ".thumb.jpg"
        with Image.open(io.BytesIO(fetched(output["thumbnail_url"]))) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= 256

    # get_job signs fresh URLs at each read.
    for output in job["outputs"]:
        assert fetched(output["url"]) == stored(s3, output["uri"])
    assert [o["uri"] for o in job["outputs"]] == [o["uri"] for o in event["outputs"]]

    assert status.returncode == 0, status.stderr
    shown = [line.strip() for line in status.stdout.splitlines() if "X-Amz-" in line]
    assert len(shown) == 2 and all(expires(url) == str(TTL) for url in shown)

    assert printed.returncode == 0, printed.stderr
    urls = printed.stdout.split()
    assert len(urls) == 2 and all(expires(url) == "120" for url in urls)
    assert [fetched(url) for url in urls] == [stored(s3, o["uri"]) for o in job["outputs"]]

    assert none.returncode == 1
    assert f"job {failed_id} is failed and has no stored output" in none.stderr
    assert bad.returncode == 2
    assert "--ttl: 604801 s is outside 1 to 604800 s" in bad.stderr


def _delivered(job_id: str, context: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        job = get_job(job_id, context=context)
        if job["webhook_status"] != "pending" or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_without_the_setting_no_url_is_given_and_a_reader_with_it_signs_at_read_time(
    producer, s3, image_file
):
    """The default: outputs as they always were, plus the thumbnail beside each. A process that
    reads jobs with the setting signs their URLs itself, whatever the worker had."""
    job_id = submit_edit(prompt="plain", images=[str(image_file("p.png"))])
    job = wait_for_job(job_id, 60)
    assert job["status"] == "succeeded"
    [output] = job["outputs"]
    assert set(output) == {"index", "uri", "thumbnail"}
    [event] = [
        e for _, e in read_events(producer.redis, producer.settings.events_stream)
        if e["job_id"] == job_id
    ]  # fmt: skip
    assert event["outputs"] == job["outputs"]

    reader = replace(producer, settings=producer.settings.model_copy(update={"result_url_ttl": 60}))
    [signed] = get_job(job_id, context=reader)["outputs"]
    assert expires(signed["url"]) == "60" and expires(signed["thumbnail_url"]) == "60"
    assert fetched(signed["url"]) == stored(s3, output["uri"])
