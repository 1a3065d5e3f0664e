"""End to end: producer -> submit -> countdown polls -> finish -> one event, on real servers."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from tests.conftest import make_image
from tests.e2e.conftest import BUCKET
from wanedit.producers import InvalidRequest, get_job, submit_edit, wait_for_job
from wanedit.store.events import read_events

pytestmark = pytest.mark.integration
TIMEOUT = 60


def events_for(producer: Any, job_id: str) -> list[dict[str, Any]]:
    stream = producer.settings.events_stream
    return [event for _, event in read_events(producer.redis, stream) if event["job_id"] == job_id]


def stored_png(s3: Any, uri: str) -> tuple[Image.Image, dict[str, Any]]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    answer = s3.get_object(Bucket=bucket, Key=key)
    assert answer["ContentType"] == "image/png"
    image = Image.open(io.BytesIO(answer["Body"].read()))
    image.load()
    assert image.format == "PNG"
    return image, answer["Metadata"]


def test_single_image_edit_lands_in_s3_with_one_event(producer, s3, image_file):
    source = image_file("dress.png", 640, 480)
    job_id = submit_edit(
        prompt="Make the dress red", images=[str(source)], size="1024*1024", metadata={"sku": 7}
    )
    job = wait_for_job(job_id, TIMEOUT)

    assert job["status"] == "succeeded", job
    assert job["provider_task_id"]
    assert job["usage"] == {"image_count": 1, "cost": 0.220177, "currency": "CNY"}
    assert job["account"] == "default"
    assert job["priority"] == "interactive"
    assert [output["index"] for output in job["outputs"]] == [0]
    uri = job["outputs"][0]["uri"]
    assert uri == f"s3://{BUCKET}/out/{job_id}/0.png"
    image, metadata = stored_png(s3, uri)
    assert image.size == (1024, 1024)
    assert metadata["job-id"] == job_id
    assert metadata["provider-task-id"] == job["provider_task_id"]
    assert "Make the dress red" in metadata["actual-prompt"]
    for name in ("queued", "submitted", "running", "succeeded"):
        assert job["timestamps"][name], name

    events = events_for(producer, job_id)
    assert len(events) == 1
    event = events[0]
    assert event["type"] == "job.succeeded"
    thumbnail = f"s3://{BUCKET}/out/{job_id}/0.thumb.jpg"
    assert event["outputs"] == [{"index": 0, "uri": uri, "thumbnail": thumbnail}]
    assert event["error"] is None
    assert event["metadata"] == {"sku": 7}
    assert event["usage"] == job["usage"]


def test_three_image_fusion_with_two_outputs(producer, s3, image_file):
    local = image_file("clock.jpg", 800, 600, (30, 120, 200), "JPEG")
    data_uri = (
        "data:image/png;base64," + base64.b64encode(make_image(512, 768, (20, 180, 60))).decode()
    )
    s3.put_object(Bucket=BUCKET, Key="inputs/vase.png", Body=make_image(600, 600, (240, 200, 0)))
    job_id = submit_edit(
        {
            "prompt": "Place the clock from Image 1 next to the vase in Image 3",
            "images": [str(local), data_uri, f"s3://{BUCKET}/inputs/vase.png"],
            "n": 2,
            "size": "1280*720",
            "seed": 42,
        }
    )
    stored_request = get_job(job_id)["request"]
    assert all(source.startswith("s3://") for source in stored_request["images"])

    job = wait_for_job(job_id, TIMEOUT)
    assert job["status"] == "succeeded", job
    assert job["usage"]["image_count"] == 2
    assert [output["index"] for output in job["outputs"]] == [0, 1]
    for output in job["outputs"]:
        image, _ = stored_png(s3, output["uri"])
        assert image.size == (1280, 720)
    assert len(events_for(producer, job_id)) == 1


def test_failed_task_ends_with_provider_code_and_one_event(producer, image_file):
    job_id = submit_edit(prompt="[sandbox:fail] anything", images=[str(image_file("a.png"))])
    job = wait_for_job(job_id, TIMEOUT)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "InternalError.Algo"
    assert job["error"]["message"]
    assert job["outputs"] == []
    events = events_for(producer, job_id)
    assert [event["type"] for event in events] == ["job.failed"]
    assert events[0]["error"] == job["error"]


def test_partial_failure_keeps_the_good_images(producer, s3, image_file):
    job_id = submit_edit(prompt="[sandbox:partial] two", images=[str(image_file("b.png"))], n=2)
    job = wait_for_job(job_id, TIMEOUT)

    assert job["status"] == "succeeded", job
    assert job["usage"]["image_count"] == 1
    good, bad = job["outputs"]
    assert good["index"] == 0
    stored_png(s3, good["uri"])
    assert bad["index"] == 1
    assert bad["error"]["code"]
    assert "uri" not in bad
    events = events_for(producer, job_id)
    assert len(events) == 1
    assert events[0]["outputs"] == job["outputs"]


def test_unknown_task_fails_the_job_once(producer, image_file):
    job_id = submit_edit(prompt="[sandbox:expire] gone", images=[str(image_file("c.png"))])
    job = wait_for_job(job_id, TIMEOUT)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "TaskUnknown"
    assert job["provider_status"] == "UNKNOWN"
    assert [event["type"] for event in events_for(producer, job_id)] == ["job.failed"]


def test_moderation_refusal_at_create_is_terminal(producer, image_file):
    job_id = submit_edit(prompt="[sandbox:moderation] x", images=[str(image_file("d.png"))])
    job = wait_for_job(job_id, TIMEOUT)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "DataInspectionFailed"
    assert job["provider_task_id"] is None
    assert len(events_for(producer, job_id)) == 1


def test_redelivered_tasks_do_not_emit_a_second_event(producer, image_file):
    from wanedit.workers import tasks

    job_id = submit_edit(prompt="Once only", images=[str(image_file("e.png"))])
    job = wait_for_job(job_id, TIMEOUT)
    assert job["status"] == "succeeded"

    # Run every step again in this process, as a redelivery would.
    tasks.submit.run(job_id, "default")
    tasks.poll.run(job_id)
    tasks.finish.run(job_id)

    assert len(events_for(producer, job_id)) == 1
    assert get_job(job_id)["outputs"] == job["outputs"]


def test_invalid_request_enqueues_nothing(producer, image_file):
    small = image_file("small.png", 300, 300)
    keys_before = set(producer.redis.scan_iter(f"{producer.settings.key_prefix}:job:*"))
    queue_before = producer.redis.llen(producer.settings.queue)

    with pytest.raises(InvalidRequest) as raised:
        submit_edit(prompt="x", images=[str(small)], n=9)

    assert "n: 9 is outside 1 to 4 images" in raised.value.problems
    with pytest.raises(InvalidRequest) as raised:
        submit_edit(prompt="x", images=[str(small)])
    assert raised.value.problems == [
        "images[0]: 300x300 px is below the provider's minimum width of 384 px"
    ]
    assert set(producer.redis.scan_iter(f"{producer.settings.key_prefix}:job:*")) == keys_before
    assert producer.redis.llen(producer.settings.queue) == queue_before


def test_idempotency_key_returns_the_same_job(producer, image_file):
    source = str(image_file("f.png"))
    first = submit_edit(prompt="same", images=[source], idempotency_key="order-123-edit")
    second = submit_edit(prompt="same", images=[source], idempotency_key="order-123-edit")
    assert first == second
    assert wait_for_job(first, TIMEOUT)["status"] == "succeeded"
    assert len(events_for(producer, first)) == 1


def test_api_key_never_stored_in_records_or_events(producer, image_file):
    job_id = submit_edit(prompt="secret check", images=[str(image_file("g.png"))])
    wait_for_job(job_id, TIMEOUT)
    key = producer.settings.dashscope_api_key.get_secret_value()
    record = producer.redis.hgetall(f"{producer.settings.key_prefix}:job:{job_id}")
    assert key not in json.dumps(record)
    assert key not in json.dumps(events_for(producer, job_id))


def test_missing_output_bucket_is_refused_before_anything_is_paid(producer, image_file):
    from wanedit.config.settings import load_settings
    from wanedit.intake.context import build_context

    # Allowed (WANEDIT_OUTPUT_BUCKETS), so that what is refused is its absence.
    ctx = build_context(load_settings(output_buckets=["no-such-bucket"]))
    with pytest.raises(InvalidRequest) as raised:
        submit_edit(
            prompt="p",
            images=[str(image_file("o.png"))],
            output="s3://no-such-bucket/x/",
            context=ctx,
        )
    assert raised.value.problems == ["output: bucket 'no-such-bucket' does not exist"]


def test_missing_s3_input_is_refused(producer):
    with pytest.raises(InvalidRequest) as raised:
        submit_edit(prompt="p", images=[f"s3://{BUCKET}/nothing/here.png"])
    assert raised.value.problems == [f"images[0]: s3://{BUCKET}/nothing/here.png does not exist"]


def test_worker_log_never_shows_the_api_key(producer, worker, image_file):
    job_id = submit_edit(prompt="log check", images=[str(image_file("h.png"))])
    assert wait_for_job(job_id, TIMEOUT)["status"] == "succeeded"
    key = producer.settings.dashscope_api_key.get_secret_value()
    log = worker.log_path.read_text(errors="replace")
    assert job_id in log  # the log is the worker's, and it logged this job
    assert key not in log


def test_with_thumbnails_off_a_result_is_stored_alone(
    stack_env, sandbox, s3, image_file, run_id, tmp_path
):
    from pathlib import Path

    from tests.e2e.conftest import own_stack
    from wanedit.sandbox.stack import Worker

    tag = f"nothumbs-{run_id}"
    env, context = own_stack(stack_env, tag, sandbox.base_url, {"WANEDIT_THUMBNAILS": "false"})
    worker = Worker(
        env,
        concurrency=1,
        log_path=tmp_path / "worker.log",
        cwd=Path.cwd(),
    ).start()
    try:
        job_id = submit_edit(
            prompt="Make the dress blue", images=[str(image_file("plain.png"))], context=context
        )
        job = wait_for_job(job_id, TIMEOUT, context=context)
    finally:
        worker.stop()
    assert job["status"] == "succeeded", job
    assert job["outputs"] == [{"index": 0, "uri": f"s3://{BUCKET}/out/{job_id}/0.png"}]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"out/{job_id}/")
    assert [item["Key"] for item in listed["Contents"]] == [f"out/{job_id}/0.png"]
