"""The provider's task-end events (CloudEvents on EventBridge): parsed, and what one means. Pure.

An event carries no result and no signature: it only says which task to look at. Its status is
never trusted; the query it leads to decides what happens to the job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from wanedit.errors import InvalidEvent

SOURCE = "acs.dashscope"
TYPE = "dashscope:System:AsyncTaskFinish"
# Event ids and task ids are short plain text; anything else is not the provider's.
ID_MAX = 256
_TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class ProviderEvent:
    """The parts of an event wanedit reads: its id (for dedupe), the task, the model's key."""

    id: str
    task_id: str
    task_status: str | None = None
    unique_key: str | None = None


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{field}: must be a non-empty string")
    return value


def parse_event(body: bytes | str) -> ProviderEvent:
    """One event from a POST body; InvalidEvent naming the field and its problem."""
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidEvent("body: not JSON") from None
    if not isinstance(raw, dict):
        raise InvalidEvent("body: must be a JSON object (one CloudEvents event)")
    event_id = _text(raw.get("id"), "id")
    if len(event_id) > ID_MAX or not _PRINTABLE.fullmatch(event_id):
        raise InvalidEvent(f"id: must be at most {ID_MAX} printable characters without spaces")
    if raw.get("source") != SOURCE:
        raise InvalidEvent(f"source: must be {SOURCE!r}")
    if raw.get("type") != TYPE:
        raise InvalidEvent(f"type: must be {TYPE!r}")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise InvalidEvent("data: must be a JSON object")
    task_id = _text(data.get("task_id"), "data.task_id")
    if not _TASK_ID.fullmatch(task_id):
        raise InvalidEvent("data.task_id: must be 1 to 128 letters, digits or -_.:")
    status = data.get("task_status")
    if status is not None and not isinstance(status, str):
        raise InvalidEvent("data.task_status: must be a string")
    unique_key = data.get("user_api_unique_key")
    if unique_key is not None and not isinstance(unique_key, str):
        raise InvalidEvent("data.user_api_unique_key: must be a string")
    return ProviderEvent(event_id, task_id, status, unique_key)


class EventOutcome(Enum):
    """What became of one POST (the `outcome` label of wanedit_provider_events_total)."""

    POLLED = "polled"  # the owning job's result query was sent
    UNKNOWN = "unknown"  # no job of ours has this task (yet): kept briefly for its create
    DUPLICATE = "duplicate"  # this event was handled before, or its job has ended
    REJECTED = "rejected"  # malformed, or not a task-end event
    UNAUTHORIZED = "unauthorized"  # a wrong or missing token


# Job states in which a task-end event has nothing left to start.
_DONE = frozenset({"succeeded", "failed", "canceled"})


def outcome_for(
    *, first_time: bool, job_id: str | None, job_status: str | None, provider_status: str | None
) -> EventOutcome:
    """What an authorised, well-formed event leads to. `first_time`: its id was not handled
    before; `job_id`: the job that owns its task (None: none does); `job_status` and
    `provider_status`: that job's, as recorded (None: its record is gone)."""
    if not first_time:
        return EventOutcome.DUPLICATE
    if job_id is None:
        return EventOutcome.UNKNOWN
    if job_status is None or job_status in _DONE or provider_status == "SUCCEEDED":
        # Ended, or its results are being copied: the last query told all there is.
        return EventOutcome.DUPLICATE
    return EventOutcome.POLLED
