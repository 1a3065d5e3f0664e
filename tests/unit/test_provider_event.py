"""The provider's task-end events: parsing and what one leads to, as tables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wanedit.errors import InvalidEvent
from wanedit.producers.provider_event import (
    SOURCE,
    TYPE,
    EventOutcome,
    ProviderEvent,
    outcome_for,
    parse_event,
)


def event(**changes: Any) -> dict[str, Any]:
    """An event as PROVIDER.md documents it."""
    body: dict[str, Any] = {
        "id": "ev-1",
        "source": SOURCE,
        "type": TYPE,
        "specversion": "1.0",
        "time": "2025-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "aliyunaccountid": "1234",
        "aliyunpublishtime": "2025-01-01T00:00:00.123Z",
        "aliyunregionid": "cn-beijing",
        "aliyuneventbusname": "default",
        "data": {
            "task_id": "0385dc79-5ff8-4d82-bcb6-xxxxxx",
            "task_status": "SUCCEEDED",
            "request_id": "r-1",
            "start_time": "2025-01-01 08:00:00",
            "end_time": "2025-01-01 08:00:30",
            "region": "cn-beijing",
            "api_key_id": "k",
            "user_api_unique_key": "apikey:v1:aigc:image2image:image-synthesis:wan2.5-i2i-preview",
            "contain_result": False,
        },
    }
    body.update(changes)
    return body


def test_a_documented_event_is_read():
    assert parse_event(json.dumps(event())) == ProviderEvent(
        "ev-1",
        "0385dc79-5ff8-4d82-bcb6-xxxxxx",
        "SUCCEEDED",
        "apikey:v1:aigc:image2image:image-synthesis:wan2.5-i2i-preview",
    )


def data(**changes: Any) -> dict[str, Any]:
    return {**event()["data"], **changes}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "body: not JSON"),
        (b"[" * 100_000, "body: not JSON"),
        (b"[]", "body: must be a JSON object"),
        (json.dumps(event(id=None)).encode(), "id: must be a non-empty string"),
        (json.dumps(event(id="a b")).encode(), "id: must be at most 256 printable"),
        (json.dumps(event(id="x" * 257)).encode(), "id: must be at most 256"),
        (json.dumps(event(source="acs.oss")).encode(), "source: must be 'acs.dashscope'"),
        (json.dumps(event(type="other")).encode(), "type: must be"),
        (json.dumps(event(data="x")).encode(), "data: must be a JSON object"),
        (json.dumps(event(data=data(task_id=5))).encode(), "data.task_id: must be a non-empty"),
        (json.dumps(event(data=data(task_id="a/b"))).encode(), "data.task_id: must be 1 to 128"),
        (json.dumps(event(data=data(task_status=1))).encode(), "data.task_status: must be a"),
        (
            json.dumps(event(data=data(user_api_unique_key=[]))).encode(),
            "data.user_api_unique_key: must be a string",
        ),
    ],
)
def test_a_malformed_event_is_refused_naming_its_field(body, problem):
    with pytest.raises(InvalidEvent, match=problem.replace("(", r"\(")):
        parse_event(body)


@pytest.mark.parametrize(
    ("first", "job_id", "status", "provider", "outcome"),
    [
        (True, "j", "submitted", "PENDING", EventOutcome.POLLED),
        (True, "j", "running", "RUNNING", EventOutcome.POLLED),
        (True, None, None, None, EventOutcome.UNKNOWN),  # not ours, or not recorded yet
        (False, "j", "running", "RUNNING", EventOutcome.DUPLICATE),  # the same id again
        (True, "j", "succeeded", "SUCCEEDED", EventOutcome.DUPLICATE),  # ended
        (True, "j", "failed", "FAILED", EventOutcome.DUPLICATE),
        (True, "j", "canceled", "CANCELED", EventOutcome.DUPLICATE),
        (True, "j", "running", "SUCCEEDED", EventOutcome.DUPLICATE),  # results being copied
        (True, "j", None, None, EventOutcome.DUPLICATE),  # its record is gone
    ],
)
def test_what_an_event_leads_to(first, job_id, status, provider, outcome):
    got = outcome_for(first_time=first, job_id=job_id, job_status=status, provider_status=provider)
    assert got is outcome
