"""The task-end event the provider publishes on EventBridge, and the sandbox's knobs for it. Pure.

docs/dashscope.md, "Completion pushed by the provider (EventBridge)": when an async task ends
(succeeded or not) the provider publishes a CloudEvents 1.0 event, ``source`` ``acs.dashscope``,
``type`` ``dashscope:System:AsyncTaskFinish``, which an EventBridge rule routes to an HTTP target
as a POST of the whole event as JSON. ``data`` times are Beijing-time strings to the second (the
provider's zone, ``SandboxConfig.utc_offset_hours``); the envelope's ``time`` and
``aliyunpublishtime`` are UTC, ISO 8601 with milliseconds and ``Z``. The event carries no result
and no signature. A token, if the receiver wants one, is part of the target's URL or one of its
extra headers, as an EventBridge HTTP target is configured.

Sandbox choices where the documentation is silent: ``time`` is the task's end and
``aliyunpublishtime`` the first POST attempt; a task canceled while PENDING never started, so its
``start_time`` and ``end_time`` are both the cancel instant; ``aliyunaccountid`` is the main
account's uid (the list rows' ``caller_parent_id``); ``aliyunregionid`` and ``data.region`` are
``SandboxConfig.region``.

Sandbox-only fault knobs (the provider sends each event once, "as soon as the task ends"):
``event_delay`` and ``event_jitter`` hold a send back, ``event_loss_rate`` drops an event,
``event_dup_rate`` sends it twice with the same ``id``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from wanedit.sandbox.accounts import api_key_id, uid
from wanedit.sandbox.faults import draw
from wanedit.sandbox.tasks import CANCELED, FAILED, SUCCEEDED, Task

SOURCE = "acs.dashscope"
TYPE = "dashscope:System:AsyncTaskFinish"
SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json;charset=utf-8"
EVENT_BUS = "default"
# How EventBridge retries an HTTP target that is down or answers non-2xx, kept short here:
# a few attempts with a doubling pause, then the event counts as failed.
RETRY_PAUSES = (0.5, 1.0, 2.0)
POST_TIMEOUT = 5.0
REDACTED = "***"


@dataclass(frozen=True)
class EventTarget:
    """Where and how the sandbox POSTs task-end events; ``url`` None sends none."""

    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        check_target(self.url, self.headers, self.delay, self.jitter)
        object.__setattr__(self, "headers", dict(self.headers))


def check_target(url: Any, headers: Any, delay: Any, jitter: Any) -> None:
    """Raise ValueError naming the field for a bad event target."""
    if url is not None:
        if not isinstance(url, str):
            raise ValueError("event_url: must be an http(s) URL or null")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"event_url: {redact_url(url)!r} is not an http(s) URL with a host")
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValueError("event_headers: must map header names to string values")
    for name, value in (("event_delay", delay), ("event_jitter", jitter)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name}: must be a number of seconds >= 0, got {value!r}")


@dataclass(frozen=True)
class Plan:
    """What happens to one task's event: sent after ``wait`` seconds, ``copies`` times (0: lost)."""

    wait: float
    copies: int


def plan(rng: random.Random, target: EventTarget, loss_rate: float, dup_rate: float) -> Plan:
    """Draw one event's fate; draws nothing for a rate of 0 or 1 or a jitter of 0."""
    wait = target.delay + (rng.uniform(0.0, target.jitter) if target.jitter > 0 else 0.0)
    if draw(rng, loss_rate):
        return Plan(wait, 0)
    return Plan(wait, 2 if draw(rng, dup_rate) else 1)


def end_status(task: Task) -> str:
    """The status the task ends in: CANCELED, FAILED or SUCCEEDED."""
    if task.canceled_at is not None:
        return CANCELED
    return FAILED if task.outcome.failure else SUCCEEDED


def ended_at(task: Task) -> float:
    """When the task ends (or ended): its cancel, else its start plus its duration."""
    if task.canceled_at is not None:
        return task.canceled_at
    if task.end_at is None:
        raise ValueError(f"task {task.task_id} has not started, so its end is not known")
    return task.end_at


def beijing_seconds(timestamp: float, zone: tzinfo) -> str:
    """Unix seconds as ``"YYYY-MM-DD hh:mm:ss"`` in ``zone``, the fraction dropped."""
    ms = round(timestamp * 1000)
    return datetime.fromtimestamp(ms // 1000, tz=zone).strftime("%Y-%m-%d %H:%M:%S")


def utc_iso(timestamp: float) -> str:
    """Unix seconds as ``"YYYY-MM-DDThh:mm:ss.mmmZ"`` (UTC)."""
    ms = round(timestamp * 1000)
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def event_body(
    task: Task, zone: tzinfo, region: str, event_id: str | None = None
) -> dict[str, Any]:
    """The event for a task that ended; ``aliyunpublishtime`` is set at sending (``published``)."""
    end = ended_at(task)
    start = task.start_at if task.canceled_at is None and task.start_at is not None else end
    model = task.request.model
    return {
        "id": event_id or str(uuid.uuid4()),
        "source": SOURCE,
        "specversion": SPEC_VERSION,
        "type": TYPE,
        "datacontenttype": CONTENT_TYPE,
        "time": utc_iso(end),
        "aliyunaccountid": uid(task.account),
        "aliyunpublishtime": utc_iso(end),
        "aliyunregionid": region,
        "aliyuneventbusname": EVENT_BUS,
        "data": {
            "task_id": task.task_id,
            "task_status": end_status(task),
            "request_id": task.request_id,
            "start_time": beijing_seconds(start, zone),
            "end_time": beijing_seconds(end, zone),
            "region": region,
            "api_key_id": api_key_id(task.api_key),
            "user_api_unique_key": f"apikey:v1:aigc:image2image:image-synthesis:{model}",
            "contain_result": False,
        },
    }


def published(body: dict[str, Any], at: float) -> dict[str, Any]:
    """The event as sent at ``at``: the same event, its ``aliyunpublishtime`` stamped."""
    return {**body, "aliyunpublishtime": utc_iso(at)}


def retry_pause(attempt: int) -> float | None:
    """The pause before retry number ``attempt`` (1-based); None when retries are spent."""
    if 1 <= attempt <= len(RETRY_PAUSES):
        return RETRY_PAUSES[attempt - 1]
    return None


def redact_url(url: str | None) -> str | None:
    """The URL with every query value and any user info hidden (a receiver's token may be one)."""
    if url is None:
        return None
    parts = urlsplit(url)
    query = urlencode([(k, REDACTED) for k, _ in parse_qsl(parts.query, keep_blank_values=True)])
    netloc = parts.netloc.rpartition("@")[2]  # user:password@ too
    return urlunsplit(parts._replace(query=query, netloc=netloc))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names with their values hidden."""
    return dict.fromkeys(headers, REDACTED)
