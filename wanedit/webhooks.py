"""Completion callbacks: who is told when a job ends, Standard Webhooks signing, retry policy.

Pure: no HTTP, no Redis, no Celery. The `wanedit.deliver` task does the I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wanedit.errors import UrlNotAllowed
from wanedit.urlguard import parse_target

SECRET_PREFIX = "whsec_"
DEFAULT_CALLBACK_QUEUE = "celery"
URL_MAX = 2048
# The most of a receiver's answer a delivery reads: only its status counts.
ANSWER_MAX = 64 * 1024
_TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def check_callback_url(url: str) -> str:
    """An http(s) URL spelled the one way the URL guard reads it; whether its address may be
    reached is decided at delivery."""
    if len(url) > URL_MAX:
        raise ValueError(f"URL is longer than {URL_MAX} characters")
    try:
        parse_target(url)
    except UrlNotAllowed as exc:
        raise ValueError(exc.reason) from None
    return url


def check_task_name(name: str) -> str:
    """A Celery task name as dotted Python identifiers, for example `myapp.tasks.on_edit`."""
    if len(name) > 200 or not _TASK_NAME.fullmatch(name):
        raise ValueError(f"{name[:40]!r} is not a dotted task name such as myapp.tasks.on_edit")
    return name


def check_queue_name(name: str) -> str:
    if not _QUEUE_NAME.fullmatch(name):
        raise ValueError(f"{name[:40]!r} must be 1 to 200 of A-Z a-z 0-9 _ . : -")
    return name


@dataclass(frozen=True)
class Targets:
    """Where a finished job's event goes: a webhook URL and/or a Celery task by name."""

    webhook_url: str | None = None
    on_complete: str | None = None
    on_complete_queue: str = DEFAULT_CALLBACK_QUEUE

    @property
    def any(self) -> bool:
        return bool(self.webhook_url or self.on_complete)


def targets_for(
    request: Mapping[str, Any],
    *,
    webhook_url: str | None,
    on_complete: str | None,
    on_complete_queue: str,
) -> Targets:
    """The request's own callbacks, else the deployment's defaults."""
    return Targets(
        webhook_url=request.get("callback_url") or webhook_url,
        on_complete=request.get("on_complete") or on_complete,
        on_complete_queue=request.get("on_complete_queue") or on_complete_queue,
    )


def decode_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; ValueError names what is wrong."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX!r} is not valid base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"the key is {len(key)} bytes; use 24 to 64 random bytes")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` + base64(HMAC-SHA256(key, id.timestamp.body))."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, message_id, timestamp, body),
    }
