"""`wanedit listen` keeps serving: over real sockets, a real Redis and moto's S3 and SQS, an idle
or slow connection blocks no one, every malformed notification gets an answer naming its field,
and a listener sets a bad record aside and goes on with the next, on every restart too."""

from __future__ import annotations

import json
import select
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import redis
import requests

from tests.conftest import make_image
from wanedit.config.settings import Settings
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers.listen import http_server, listen_redis_list, listen_sqs
from wanedit.sandbox.stack import SANDBOX_KEY, free_port, patched_env
from wanedit.store.keys import Keys

pytestmark = pytest.mark.integration

BUCKET = "listen-poison"
RULES = json.dumps([{"bucket": BUCKET, "prompt": "Add a hat", "output": f"s3://{BUCKET}/edited/"}])


def created(s3: Any) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": s3}]})


# Each malformed shape that once crashed a listener, with the field its answer names.
MALFORMED: list[tuple[bytes, str]] = [
    (b'{"Records": 5}', "Records: must be a list of records"),
    (created({"bucket": {"name": 5}, "object": {"key": "a.png"}}).encode(), "s3.bucket.name"),
    (created({"bucket": "photos", "object": {"key": "a.png"}}).encode(), "Records[0].s3.bucket"),
    (created({"bucket": {"name": BUCKET}, "object": {"key": "a", "eTag": 5}}).encode(), "eTag"),
    (b'{"Records": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "body: JSON nested too deeply"),
    (b'{"Event": [{"eventName": "s3:ObjectCreated:Put\xff\xfe"}]}', "body: not JSON"),
]


@pytest.fixture(scope="module")
def ctx(redis_url: str, s3_server: dict[str, str], run_id: str) -> Iterator[ProducerContext]:
    tag = f"listen-{run_id}"
    values = {
        **s3_server,
        "AWS_ENDPOINT_URL_SQS": s3_server["AWS_ENDPOINT_URL_S3"],
        "WANEDIT_REDIS_URL": redis_url,
        "WANEDIT_KEY_PREFIX": f"wanedit-{tag}",
        "WANEDIT_QUEUE": f"wanedit-{tag}",
        "WANEDIT_EVENTS_STREAM": f"wanedit-{tag}:events",
        "WANEDIT_OUTPUT_URI": f"s3://{BUCKET}/out/",
        "WANEDIT_LISTEN_RULES": RULES,
        "WANEDIT_LISTEN_TOKEN": "hook-token",
        "DASHSCOPE_API_KEY": SANDBOX_KEY,
    }
    with patched_env(values):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="in/good.png", Body=make_image(512, 512, (9, 90, 9)))
        yield build_context(Settings())


def good_notification() -> bytes:
    return created({"bucket": {"name": BUCKET}, "object": {"key": "in/good.png"}}).encode()


@pytest.fixture
def receiver_url(ctx: ProducerContext) -> Iterator[str]:
    server = http_server(ctx, "127.0.0.1", free_port(), lambda outcome: None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


AUTH = {"Authorization": "Bearer hook-token"}


def test_an_idle_connection_does_not_block_the_webhook_receiver(receiver_url):
    port = int(receiver_url.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port)) as idle:
        idle.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # and then nothing more
        # The guard's timeout only turns a hang into a failure: the answer comes at once.
        answer = requests.post(receiver_url, data=b'{"Records": 5}', headers=AUTH, timeout=20)
    assert answer.status_code == 400
    assert answer.json()["dropped"].startswith("invalid notification: Records: must be a list")


def test_a_slow_client_is_cut_off_with_an_answer(ctx):
    server = http_server(ctx, "127.0.0.1", free_port(), lambda outcome: None, request_deadline=0.5)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port)) as slow:
            head = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hook-token\r\n"
            slow.sendall(f"{head}Content-Length: 5000\r\n\r\n".encode())
            received = b""
            for _ in range(1000):  # one byte at a time, each well inside the idle timeout
                ready, _, _ = select.select([slow], [], [], 0.05)
                if ready:
                    slow.settimeout(20)  # a guard: the answer is written at once, then closed
                    received = b"".join(iter(lambda: slow.recv(4096), b""))
                    break
                slow.sendall(b"{")
            assert received.startswith(b"HTTP/1.0 408"), received
            assert b"body: not received in time" in received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(("body", "field"), MALFORMED)
def test_every_malformed_notification_gets_a_400_naming_its_field(receiver_url, body, field):
    answer = requests.post(receiver_url, data=body, headers=AUTH, timeout=20)
    assert answer.status_code == 400, answer.text
    assert answer.json()["jobs"] == []
    assert field in answer.json()["dropped"]


def test_a_bad_record_on_a_redis_list_is_set_aside_and_the_rest_flows(ctx, redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    raw = redis.Redis.from_url(redis_url)
    key = f"events-{uuid.uuid4().hex[:8]}"
    keys = Keys(ctx.settings.key_prefix)
    processing, dead = keys.listen_processing(key), keys.listen_dead(key)
    # One taken by a listener that died handling it: it is handled first on the next start.
    raw.rpush(processing, MALFORMED[0][0])
    raw.rpush(key, *[body for body, _ in MALFORMED[1:]], good_notification())

    made = listen_redis_list(ctx, client, key, once=True)

    assert made == 1
    assert raw.llen(key) == 0 and raw.llen(processing) == 0
    assert raw.lrange(dead, 0, -1) == [body for body, _ in MALFORMED]
    # A restart finds nothing left to choke on; the set-aside records stay where they are.
    assert listen_redis_list(ctx, client, key, once=True) == 0
    assert raw.llen(dead) == len(MALFORMED)


def test_a_bad_message_on_sqs_is_deleted_and_logged_and_the_rest_flows(ctx, run_id, caplog):
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"listen-poison-{run_id}")["QueueUrl"]
    texts = [body.decode("utf-8", "replace") for body, _ in MALFORMED]  # SQS carries text
    for text in [*texts, good_notification().decode()]:
        sqs.send_message(QueueUrl=url, MessageBody=text)

    made = listen_sqs(ctx, sqs, url, once=True, wait_seconds=1)

    assert made == 1
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert set(attributes.values()) == {"0"}
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == len(MALFORMED)
    assert not any("[[[" in line for line in dropped)  # the reason, never the body


def test_above_the_connection_limit_a_caller_is_told_to_come_back(ctx):
    server = http_server(ctx, "127.0.0.1", free_port(), lambda outcome: None, connections=1)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        with socket.create_connection(("127.0.0.1", server.server_port)) as idle:
            idle.sendall(b"POST / HTTP/1.1\r\n")  # holds the one connection
            answer = requests.post(url, data=b"{}", headers=AUTH, timeout=20)
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "1"
            assert answer.json() == {"error": "too many connections; send it again"}
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
