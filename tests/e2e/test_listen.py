"""`wanedit listen` over real HTTP: moto's S3 sends real notifications to its SQS queue."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import make_image
from wanedit.producers.api import get_job, wait_for_job
from wanedit.sandbox.stack import patched_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
BUCKET = "photos"  # the example bucket of docs/storage-events.md
JOB_LINE = re.compile(r"job ([0-9a-f]{32}): from (s3://\S.*) \(")


def example() -> str:
    """The first bash block of docs/storage-events.md."""
    text = (ROOT / "docs" / "storage-events.md").read_text()
    return text.split("```bash\n", 1)[1].split("```", 1)[0]


@pytest.fixture(scope="module")
def listen_env(stack_env: dict[str, str], run_id: str) -> Iterator[dict[str, str]]:
    """A bucket whose every upload is notified to an SQS queue, as the docs set it up."""
    env = {**stack_env, "AWS_ENDPOINT_URL_SQS": stack_env["AWS_ENDPOINT_URL_S3"]}
    with patched_env(env):
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        s3.create_bucket(Bucket=BUCKET)
        url = sqs.create_queue(QueueName=f"listen-{run_id}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        yield {**env, "QUEUE_URL": url}


def run_documented(env: dict[str, str]) -> tuple[list[tuple[str, str]], str]:
    """Run the documented block (with `wanedit` as this checkout's CLI); the jobs it logged."""
    script = f'wanedit() {{ "{sys.executable}" -m wanedit.producers.cli "$@"; }}\n' + example()
    result = subprocess.run(
        ["bash", "-euc", script],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return JOB_LINE.findall(result.stderr), result.stdout


def queue_depth(env: dict[str, str], *, received_only: bool = False) -> int:
    """Messages in the queue; `received_only`: those received but not deleted. (The worker's
    outputs are notified too, so new visible messages may arrive while a job runs.)"""
    names = ["ApproximateNumberOfMessagesNotVisible"]
    if not received_only:
        names.append("ApproximateNumberOfMessages")
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=env["QUEUE_URL"], AttributeNames=names
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_an_upload_becomes_an_edit_and_its_outputs_start_nothing(listen_env, worker):
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=BUCKET, Key="incoming/cat photo.png", Body=make_image(600, 400, (9, 99, 9))
    )

    jobs, stdout = run_documented(listen_env)

    # moto sent a real notification (key URL-encoded, after an s3:TestEvent), now deleted.
    assert [source for _, source in jobs] == [f"s3://{BUCKET}/incoming/cat photo.png"]
    assert stdout.strip() == "1 jobs enqueued"
    assert queue_depth(listen_env, received_only=True) == 0
    job_id = jobs[0][0]
    assert get_job(job_id)["request"]["images"] == [f"s3://{BUCKET}/incoming/cat photo.png"]
    job = wait_for_job(job_id, 60)
    assert job["status"] == "succeeded", job
    assert job["outputs"][0]["uri"].startswith(f"s3://{BUCKET}/edited/")

    # The worker's outputs and a manual upload under edited/ were notified too: no edits.
    s3.put_object(Bucket=BUCKET, Key="edited/by-hand.png", Body=make_image(512, 512, (1, 2, 3)))
    jobs, stdout = run_documented(listen_env)
    assert jobs == []
    assert stdout.strip() == "0 jobs enqueued"
    assert queue_depth(listen_env) == 0


def test_the_same_notification_twice_is_one_job(listen_env, worker):
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.put_object(Bucket=BUCKET, Key="incoming/dog.png", Body=make_image(512, 512, (80, 0, 0)))
    received = sqs.receive_message(
        QueueUrl=listen_env["QUEUE_URL"], WaitTimeSeconds=2, MaxNumberOfMessages=10
    )["Messages"]
    bodies = [m["Body"] for m in received if "incoming/dog.png" in json.loads(m["Body"])["Records"]
              [0]["s3"]["object"]["key"].replace("%2F", "/")]  # fmt: skip
    assert len(bodies) == 1
    for message in received:
        sqs.delete_message(QueueUrl=listen_env["QUEUE_URL"], ReceiptHandle=message["ReceiptHandle"])
    for _ in range(2):  # the same event, delivered twice
        sqs.send_message(QueueUrl=listen_env["QUEUE_URL"], MessageBody=bodies[0])

    jobs, _ = run_documented(listen_env)

    assert len(jobs) == 2
    assert jobs[0] == jobs[1]
    assert queue_depth(listen_env, received_only=True) == 0
    assert wait_for_job(jobs[0][0], 60)["status"] == "succeeded"
    # Its outputs' notifications start nothing either.
    assert run_documented(listen_env)[0] == []
    assert queue_depth(listen_env) == 0


def test_a_minio_access_record_on_a_redis_list(listen_env, worker, redis_url):
    import redis

    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=BUCKET, Key="incoming/minio one.png", Body=make_image(512, 512, (0, 0, 90))
    )
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "eventName": "s3:ObjectCreated:Put",
        "s3": {
            "bucket": {"name": BUCKET},
            "object": {"key": "incoming%2Fminio+one.png", "eTag": "abc", "sequencer": "17A"},
        },
    }
    key = f"minio-events-{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(redis_url)
    client.rpush(key, json.dumps({"Event": [record], "EventTime": "2026-01-01T00:00:00Z"}))
    client.rpush(key, "not json")  # dropped with a reason, not retried forever

    result = subprocess.run(
        [sys.executable, "-m", "wanedit.producers.cli", "listen", "--redis-list", key, "--once"],
        env={**os.environ, **listen_env, "WANEDIT_LISTEN_RULES": _documented_rules()},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    jobs = JOB_LINE.findall(result.stderr)
    assert [source for _, source in jobs] == [f"s3://{BUCKET}/incoming/minio one.png"]
    assert "dropped: invalid notification: body: not JSON" in result.stderr
    assert client.llen(key) == 0 and client.llen(f"{key}:processing") == 0
    # Set aside, not deleted: an operator can look at it and move it back.
    dead = f"{listen_env['WANEDIT_KEY_PREFIX']}:listen-dead:{key}"
    assert f"; set aside in {dead}" in result.stderr
    assert client.lrange(dead, 0, -1) == [b"not json"]
    assert wait_for_job(jobs[0][0], 60)["status"] == "succeeded"


def _documented_rules() -> str:
    return example().split("WANEDIT_LISTEN_RULES='", 1)[1].split("'", 1)[0]


def _object_created(key: str, etag: str = "e1") -> str:
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "eTag": etag}},
    }
    return json.dumps({"EventName": "s3:ObjectCreated:Put", "Records": [record]})


def test_the_webhook_receiver_wants_its_token(listen_env, worker):
    import requests

    from wanedit.sandbox.stack import free_port

    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="incoming/hook.png", Body=make_image(512, 512, (5, 50, 5))
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "wanedit.producers.cli", "listen",
         "--http", f"127.0.0.1:{port}", "--once"],
        env={**os.environ, **listen_env, "WANEDIT_LISTEN_RULES": _documented_rules(),
             "WANEDIT_LISTEN_TOKEN": "hook-token"},
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                refused = requests.post(url, data=_object_created("incoming/hook.png"), timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, process.stderr
                time.sleep(0.2)
        assert refused.status_code == 401
        answer = requests.post(
            url,
            data=_object_created("incoming/hook.png"),
            headers={"Authorization": "Bearer hook-token"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        (job_id,) = answer.json()["jobs"]
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.wait()
    assert wait_for_job(job_id, 60)["status"] == "succeeded"


def test_sqs_keeps_a_message_while_redis_is_down_and_drops_an_invalid_one(listen_env, run_id):
    from wanedit.sandbox.stack import free_port

    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="incoming/later.png", Body=make_image(512, 512, (7, 7, 70))
    )
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"listen-outage-{run_id}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="not a notification")
    sqs.send_message(QueueUrl=url, MessageBody=_object_created("incoming/later.png"))
    command = [sys.executable, "-m", "wanedit.producers.cli", "listen", "--sqs", url, "--once",
               "--wait-seconds", "1"]  # fmt: skip
    env = {**os.environ, **listen_env, "WANEDIT_LISTEN_RULES": _documented_rules()}

    down = subprocess.run(
        command,
        env={**env, "WANEDIT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert down.returncode == 3, down.stderr
    assert "dropped: invalid notification: body: not JSON" in down.stderr
    assert "kept for redelivery" in down.stderr
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    # The invalid one is gone; the other waits out its visibility timeout to come back.
    assert attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "1",
    }
