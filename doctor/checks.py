"""The deployment's own parts: Redis, the output bucket, the workers, beat, the receiver."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
import requests
from botocore.exceptions import BotoCoreError, ClientError

from wanedit.config.settings import Settings, redact_url
from wanedit.doctor import verdicts
from wanedit.doctor.report import Check, fail, ok, warn
from wanedit.errors import ConfigError
from wanedit.logs import redact
from wanedit.results import presign
from wanedit.store.keys import Keys

HTTP_TIMEOUT = 10.0
# The most of an answer read from the bucket or the receiver.
READ_MAX = 64 * 1024


def redis_checks(client: redis.Redis, settings: Settings) -> list[Check]:
    """Reachable; persistence on; nothing evicted."""
    where = redact_url(settings.redis_url)
    try:
        client.ping()
        info: Any = client.info("server")
        persistence: Any = client.info("persistence")
        memory: Any = client.info("memory")
    except redis.RedisError as exc:
        return [
            fail(
                "redis",
                f"{where}: {redact(str(exc))}",
                "check WANEDIT_REDIS_URL (host, port, password, TLS) and that Redis runs",
            )
        ]
    version = info.get("valkey_version") or info.get("redis_version") or "?"
    save: str | None
    try:
        rules: Any = client.config_get("save")
        save = str(rules.get("save", ""))
    except redis.RedisError:
        save = None  # managed services often refuse CONFIG
    return [
        ok("redis", f"{where} answers (version {version})"),
        verdicts.persistence(bool(int(persistence.get("aof_enabled", 0))), save),
        verdicts.eviction(str(memory.get("maxmemory_policy", "unknown"))),
    ]


def beat_check(client: redis.Redis, keys: Keys, settings: Settings, now: float) -> Check:
    try:
        raw: Any = client.lrange(keys.sweeps, 0, -1)
    except redis.RedisError as exc:
        return fail("beat", f"not read: {redact(str(exc))}", "check Redis first")
    times = []
    for value in raw:
        try:
            times.append(float(value))
        except (TypeError, ValueError):
            continue  # a stray value says nothing
    return verdicts.beat(times, now, settings.sweep_interval)


def storage_checks(
    s3: Any, settings: Settings, session: requests.Session, clock: Callable[[], float]
) -> list[Check]:
    """A small object written, read back, fetched through a presigned URL (when results get
    one), and deleted."""
    try:
        prefix = settings.output_location
    except ConfigError as exc:
        return [fail("output bucket", str(exc), "set WANEDIT_OUTPUT_URI=s3://bucket/prefix/")]
    name = "output bucket"
    target = prefix.child("wanedit-doctor", f"check-{uuid.uuid4().hex}.txt")
    body = f"wanedit doctor {clock():.3f}\n".encode()
    fix = (
        "check WANEDIT_OUTPUT_URI, the bucket, and the S3 credentials' rights (s3:PutObject, "
        "s3:GetObject, s3:DeleteObject on the prefix)"
    )
    checks: list[Check] = []
    try:
        s3.put_object(Bucket=target.bucket, Key=target.key, Body=body)
    except (BotoCoreError, ClientError) as exc:
        return [fail(name, f"writing {target}: {redact(str(exc))}", fix)]
    try:
        try:
            read = s3.get_object(Bucket=target.bucket, Key=target.key)["Body"].read(READ_MAX)
        except (BotoCoreError, ClientError) as exc:
            checks.append(fail(name, f"reading back {target}: {redact(str(exc))}", fix))
        else:
            if read == body:
                checks.append(ok(name, f"{prefix}: an object written, read back and deleted"))
            else:
                checks.append(fail(name, f"{target} read back different bytes", fix))
        checks.append(_presigned(s3, settings, session, str(target), body))
    finally:
        try:
            s3.delete_object(Bucket=target.bucket, Key=target.key)
        except (BotoCoreError, ClientError) as exc:
            checks.append(fail(name, f"deleting {target}: {redact(str(exc))}", fix))
    return checks


def _presigned(
    s3: Any, settings: Settings, session: requests.Session, uri: str, body: bytes
) -> Check:
    name = "result URLs"
    ttl = settings.result_url_ttl
    if not ttl:
        return ok(name, "off (WANEDIT_RESULT_URL_TTL unset): results carry s3:// URIs only")
    fix = (
        "results' presigned URLs must open from where people open them: check "
        "AWS_ENDPOINT_URL_S3 (a name they can reach), WANEDIT_S3_ADDRESSING_STYLE and the "
        "signing credentials"
    )
    try:
        url = presign(s3, uri, ttl)
        with session.get(url, timeout=HTTP_TIMEOUT, stream=True) as answer:
            status = answer.status_code
            got = answer.raw.read(READ_MAX + 1, decode_content=True)
    except (BotoCoreError, ClientError, requests.RequestException, OSError) as exc:
        return fail(name, f"a presigned GET failed: {redact(str(exc))}", fix)
    if status != 200:
        return fail(name, f"a presigned GET answered HTTP {status}", fix)
    if got != body:
        return fail(name, "a presigned GET answered other bytes than the object's", fix)
    return ok(name, f"a presigned GET ({ttl} s) serves the object")


def worker_check(celery: Any, settings: Settings, timeout: float) -> Check:
    """Workers answering `inspect().active_queues()`, and the queues each consumes."""
    try:
        answer = celery.control.inspect(timeout=timeout).active_queues()
    except Exception as exc:  # the broker unreachable: one line, not a traceback
        return fail("workers", f"not asked: {redact(str(exc))}", "check Redis first")
    replies = {
        str(worker): [str(queue.get("name")) for queue in queues or [] if isinstance(queue, dict)]
        for worker, queues in (answer or {}).items()
    }
    return verdicts.queues(replies, settings.queue, timeout)


def receiver_check(settings: Settings, session: requests.Session) -> Check | None:
    """The provider-events receiver's /healthz, when the events mode is on."""
    if not settings.provider_events:
        return None
    name = "events receiver"
    if not settings.provider_events_url:
        return warn(
            name,
            "WANEDIT_PROVIDER_EVENTS=true, and no WANEDIT_PROVIDER_EVENTS_URL to check it at",
            "set WANEDIT_PROVIDER_EVENTS_URL to where `wanedit provider-events` answers",
        )
    url = settings.provider_events_url + "/healthz"
    fix = "start `wanedit provider-events` (docs/provider-events.md) and check the URL"
    started = time.monotonic()
    try:
        with session.get(url, timeout=HTTP_TIMEOUT) as answer:
            status = answer.status_code
    except requests.RequestException as exc:
        return fail(name, f"{url}: {redact(str(exc))}", fix)
    if status != 200:
        return fail(name, f"{url} answered HTTP {status}", fix)
    return ok(name, f"{url} answered 200 in {time.monotonic() - started:.2f} s")
