"""Inputs staged into S3 (local files and data: URIs) are deleted once their job has ended,
however it ends; a batch's progress is kept for its retention after its last job ended."""

from __future__ import annotations

import time

import pytest

from tests.conftest import make_image
from tests.e2e.conftest import BUCKET
from wanedit.images import encode_data_uri
from wanedit.producers import cancel_job, submit_edit, wait_for_job

pytestmark = pytest.mark.integration


def staged(s3, job_id: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"wanedit-staging/{job_id}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def wait_unstaged(s3, job_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while staged(s3, job_id):
        assert time.monotonic() < deadline, staged(s3, job_id)
        time.sleep(0.1)


def test_a_staged_input_is_deleted_once_its_job_has_ended(producer, s3, image_file):
    inline = encode_data_uri(make_image(512, 512, (20, 40, 60)), "image/png")
    job_id = submit_edit(prompt="Add a hat", images=[inline, str(image_file("local.png"))])
    assert staged(s3, job_id) == [
        f"wanedit-staging/{job_id}/input-0.png",
        f"wanedit-staging/{job_id}/input-1.png",
    ]
    assert wait_for_job(job_id, 60)["status"] == "succeeded"
    wait_unstaged(s3, job_id)


def test_a_staged_input_is_deleted_when_its_job_is_canceled(producer, s3):
    inline = encode_data_uri(make_image(512, 512, (60, 40, 20)), "image/png")
    job_id = submit_edit(prompt="Add a hat", images=[inline])
    assert staged(s3, job_id)
    cancel_job(job_id)
    assert wait_for_job(job_id, 60)["status"] in ("canceled", "succeeded")  # or too late
    wait_unstaged(s3, job_id)


def test_a_batch_is_kept_for_its_retention_after_its_last_job_ended(producer, s3):
    from wanedit.intake.batch import Source, run_batch

    s3.put_object(Bucket=BUCKET, Key="retention/in.png", Body=make_image(512, 512, (1, 1, 1)))
    line = f'{{"prompt": "Add snow", "images": ["s3://{BUCKET}/retention/in.png"]}}\n'
    s3.put_object(Bucket=BUCKET, Key="retention/m.jsonl", Body=line.encode())
    status = run_batch(Source(f"s3://{BUCKET}/retention/m.jsonl"), context=producer)
    keys = producer.store.keys.batch(status["id"])
    batch_keys = (keys.info, keys.jobs, keys.lines, keys.invalid)
    retention = producer.settings.batch_retention_seconds
    for key in batch_keys[:3]:  # (no line was invalid: that hash does not exist)
        assert 0 < producer.redis.ttl(key) <= retention

    for key in batch_keys:
        producer.redis.expire(key, 30)  # the batch was enqueued long ago
    [job_id] = producer.redis.lrange(keys.jobs, 0, -1)
    assert wait_for_job(job_id, 60)["status"] == "succeeded"
    deadline = time.monotonic() + 30
    while producer.redis.ttl(keys.info) <= 30:  # the job's end renews the batch's retention
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert producer.redis.ttl(keys.jobs) > 30
