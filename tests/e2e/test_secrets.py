"""Secrets stay secret: after real jobs, the API key and the Redis password appear nowhere, and
a password-protected Redis works for producers and workers alike."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from celery.signals import before_task_publish

from tests.conftest import make_image
from tests.e2e.conftest import WEBHOOK_SECRET
from tests.receiver import webhook_receiver
from wanedit.config.settings import get_settings, load_settings
from wanedit.images import encode_data_uri
from wanedit.intake.context import build_context
from wanedit.producers import BackendUnavailable, cancel_job, get_job, submit_edit, wait_for_job
from wanedit.sandbox.stack import SANDBOX_KEY, EmbeddedRedis, Worker

pytestmark = pytest.mark.integration
TIMEOUT = 60


def decoded(raw: str) -> str:
    """A broker message as text, its base64 body decoded (kombu's Redis transport encodes it)."""
    try:
        envelope = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(envelope, list):  # the unacked hash holds [message, exchange, routing key]
        envelope = envelope[0]
    body = envelope.get("body", "")
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body).decode(errors="replace")
    return raw + "\n" + body


class BrokerTap:
    """Reads every message waiting in the queue or held for a countdown, while jobs run."""

    def __init__(self, client: redis.Redis, queue: str) -> None:
        self.client, self.queue = client, queue
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for raw in self.client.lrange(self.queue, 0, -1):
                self.seen.add(decoded(raw))
            for raw in self.client.hvals("unacked"):
                self.seen.add(decoded(raw))
            time.sleep(0.02)

    def __enter__(self) -> BrokerTap:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def dump_redis(client: redis.Redis) -> Iterator[tuple[str, str]]:
    """Every key of the database with its value as text, whatever its type."""
    for key in client.scan_iter(count=500):
        kind = client.type(key)
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            continue
        yield key, json.dumps(value, default=str)


def secret_values(redis_url: str) -> list[str]:
    password = urlsplit(redis_url).password
    webhook_key = WEBHOOK_SECRET.removeprefix("whsec_")
    return [SANDBOX_KEY, WEBHOOK_SECRET, webhook_key, *([password] if password else [])]


def test_no_secret_in_logs_records_events_messages_errors_or_repr(
    stack_env, producer, worker, image_file
):
    published: list[str] = []

    def capture(body: Any = None, headers: Any = None, **_: Any) -> None:
        published.append(json.dumps([body, headers], default=str))

    before_task_publish.connect(capture, weak=False)
    try:
        with (
            webhook_receiver() as receiver,
            BrokerTap(producer.redis, producer.settings.queue) as tap,
        ):
            ok = submit_edit(prompt="secrets: file", images=[str(image_file("s1.png"))])
            fused = submit_edit(
                prompt="secrets: data URI, two images",
                images=[encode_data_uri(make_image(500, 500, (9, 90, 9)), "image/png")],
                n=2,
            )
            failed = submit_edit(
                prompt="[sandbox:fail] secrets",
                images=[str(image_file("s2.png"))],
                callback_url=receiver.url,  # a signed webhook goes out too
            )
            moderated = submit_edit(
                prompt="[sandbox:moderation] secrets", images=[str(image_file("s3.png"))]
            )
            canceled = submit_edit(prompt="secrets: cancel", images=[str(image_file("s4.png"))])
            cancel_job(canceled)
            jobs = {
                job_id: wait_for_job(job_id, TIMEOUT)
                for job_id in (ok, fused, failed, moderated, canceled)
            }
            deadline = time.monotonic() + TIMEOUT
            while get_job(failed)["webhook_status"] == "pending" and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        before_task_publish.disconnect(capture)

    assert jobs[ok]["status"] == jobs[fused]["status"] == "succeeded"
    assert jobs[failed]["status"] == jobs[moderated]["status"] == "failed"
    assert get_job(failed)["webhook_status"] == "delivered"
    assert [got.headers["webhook-id"] for got in receiver.received] == [f"{failed}:job.failed"]
    errors = [jobs[failed]["error"], jobs[moderated]["error"]]
    assert all(error["code"] and error["message"] for error in errors)
    assert published, "the producer sent no Celery message"
    assert tap.seen, "no broker message was seen while the jobs ran"
    assert any("wanedit.submit" in message for message in tap.seen)

    places: dict[str, str] = {
        "worker log": worker.log_path.read_text(errors="replace"),
        "messages sent by the producer": "\n".join(published),
        "messages on the broker": "\n".join(sorted(tap.seen)),
        "job records as read": json.dumps([get_job(job_id) for job_id in jobs]),
        "failed jobs' errors": json.dumps(errors),
        "repr(get_settings())": repr(get_settings()),
        "str(get_settings())": str(get_settings()),
    }
    for key, value in dump_redis(producer.redis):
        places[f"redis key {key}"] = value
    assert any(key.startswith(f"redis key {producer.settings.key_prefix}:job:") for key in places)
    assert any(key == f"redis key {producer.settings.events_stream}" for key in places)
    for secret in secret_values(stack_env["WANEDIT_REDIS_URL"]):
        leaks = [place for place, text in places.items() if secret in text]
        assert not leaks, f"{secret[:4]}... found in {leaks}"


def test_password_protected_redis_works_and_the_password_is_never_shown(
    stack_env, tmp_path, image_file, run_id
):
    password = "pw-" + secrets.token_hex(12)
    server = EmbeddedRedis(password=password).start()
    try:
        url = server.url
        assert url.startswith(f"redis://:{password}@127.0.0.1:")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url.replace(f":{password}@", "")).ping()
        names = {
            "WANEDIT_REDIS_URL": url,
            "WANEDIT_QUEUE": f"auth-{run_id}",
            "WANEDIT_KEY_PREFIX": f"auth-{run_id}",
            "WANEDIT_EVENTS_STREAM": f"auth-{run_id}:events",
        }
        worker = Worker({**stack_env, **names}, log_path=tmp_path / "w.log", cwd=Path.cwd())
        worker.start()
        try:
            settings = load_settings(
                redis_url=url,
                queue=names["WANEDIT_QUEUE"],
                key_prefix=names["WANEDIT_KEY_PREFIX"],
                events_stream=names["WANEDIT_EVENTS_STREAM"],
            )
            context = build_context(settings)
            job_id = submit_edit(
                prompt="behind a password", images=[str(image_file("pw.png"))], context=context
            )
            job = wait_for_job(job_id, TIMEOUT, context=context)
        finally:
            worker.stop()
        assert job["status"] == "succeeded", job
        log = worker.log_path.read_text(errors="replace")
        assert job_id in log
        assert password not in log
        assert password not in repr(settings) and password not in str(settings)
        assert password not in json.dumps(job)
        stored = dict(dump_redis(context.redis))
        assert any(key.startswith(f"auth-{run_id}:job:") for key in stored)
        assert not [key for key, value in stored.items() if password in key + value]

        wrong = build_context(
            load_settings(redis_url=url.replace(password, "nope-" + secrets.token_hex(4)))
        )
        with pytest.raises(BackendUnavailable) as raised:
            submit_edit(prompt="p", images=[str(image_file("pw2.png"))], context=wrong)
        assert password not in str(raised.value)
    finally:
        server.stop()
