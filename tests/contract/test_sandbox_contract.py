"""The sandbox over real HTTP answers as the provider's documented answers (the fixtures) do.

Every answer is compared in shape with its fixture (``shapes.assert_same_shape``), and in value
where the documentation fixes the value: list rows use ``status`` and integer epoch milliseconds,
a row's ``request_id`` is its create call's, time strings are Beijing time (UTC+8), a cancel of a
PENDING task answers only ``{"request_id"}``. Time is a fake clock the tests move, so the expected
times are exact. A failure here means the sandbox disagrees with the documentation: fix the
sandbox (or, with a source, the fixture), never the assertion.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from PIL import Image

from tests.contract.fixtures import Fixture, load
from tests.contract.shapes import assert_same_shape
from tests.receiver import webhook_receiver
from wanedit.sandbox.server import SandboxConfig, SandboxServer

pytestmark = pytest.mark.integration

KEY = "sk-contract"
MODEL = "wan2.5-i2i-preview"
CREATE = "/services/aigc/image2image/image-synthesis"
USER_API_UNIQUE_KEY = f"apikey:v1:aigc:image2image:image-synthesis:{MODEL}"
BEIJING = timezone(timedelta(hours=8))
# 2025-10-23 16:18:16.250 in Beijing: a binary fraction, so the milliseconds are exact.
START = 1761207496.25
DURATION = 60.0
SLOTS = 5  # tasks processed at once per main account (docs/dashscope.md "Limits")
TIMEOUT = 10.0


def png_data_uri(side: int = 384) -> str:
    """The smallest accepted input: an RGB PNG of 384x384 px (no alpha) as a data URI."""
    image = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


IMAGE = png_data_uri()


def beijing(unix: float) -> str:
    """Unix seconds as the provider writes them: ``YYYY-MM-DD hh:mm:ss.mmm`` in UTC+8."""
    moment = datetime.fromtimestamp(unix, tz=BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def beijing_compact(unix: float) -> str:
    """Unix seconds as a list filter time, ``YYYYMMDDhhmmss`` in UTC+8."""
    return datetime.fromtimestamp(unix, tz=BEIJING).strftime("%Y%m%d%H%M%S")


def epoch_ms(unix: float) -> int:
    return round(unix * 1000)


class FakeClock:
    """The sandbox's clock; only the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Created:
    """A create call's answer, and the fake-clock instant it was made at."""

    response: requests.Response
    at: float

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.response.json()
        return body

    @property
    def task_id(self) -> str:
        task_id: str = self.body["output"]["task_id"]
        return task_id


@dataclass
class Provider:
    """A client of one sandbox, with its fake clock."""

    server: SandboxServer
    clock: FakeClock
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base(self) -> str:
        return self.server.base_url

    def headers(self, key: str = KEY, async_call: bool = True) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if async_call:
            headers["X-DashScope-Async"] = "enable"
        return headers

    def create(
        self,
        prompt: str = "make the sky orange",
        n: int = 1,
        key: str = KEY,
        async_call: bool = True,
        model: str = MODEL,
        advance: float = 1.0,
        **parameters: Any,
    ) -> Created:
        """Create a task ``advance`` seconds after the previous call (by default one second
        later, so the documented 5 submits/s never get in the way)."""
        self.clock.advance(advance)
        body = {
            "model": model,
            "input": {"prompt": prompt, "images": [IMAGE]},
            "parameters": {"n": n, "size": "1024*1024", **parameters},
        }
        response = self.session.post(
            self.base + CREATE,
            json=body,
            headers=self.headers(key, async_call),
            timeout=TIMEOUT,
        )
        return Created(response, self.clock.now)

    def created(self, prompt: str = "make the sky orange", n: int = 1, key: str = KEY) -> Created:
        """A create that must succeed."""
        created = self.create(prompt, n, key)
        assert created.response.status_code == 200, created.response.text
        return created

    def query(self, task_id: str, key: str = KEY) -> requests.Response:
        return self.session.get(
            f"{self.base}/tasks/{task_id}", headers=self.headers(key), timeout=TIMEOUT
        )

    def list(self, key: str = KEY, **params: Any) -> requests.Response:
        return self.session.get(
            f"{self.base}/tasks", params=params, headers=self.headers(key), timeout=TIMEOUT
        )

    def cancel(self, task_id: str, key: str = KEY) -> requests.Response:
        return self.session.post(
            f"{self.base}/tasks/{task_id}/cancel", headers=self.headers(key), timeout=TIMEOUT
        )

    def configure(self, **changes: Any) -> None:
        response = self.session.post(
            self.server.host_url + "/sandbox/config", json=changes, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text


def start(clock: FakeClock, **config: Any) -> SandboxServer:
    settings: dict[str, Any] = {
        "port": 0,
        "seed": 11,
        "api_keys": (KEY,),
        "duration_min": DURATION,
        "duration_max": DURATION,
        **config,
    }
    return SandboxServer(SandboxConfig(**settings), clock=clock).start()


@pytest.fixture
def provider() -> Iterator[Provider]:
    """A fresh sandbox with the documented defaults (UTC+8, 5 slots, 5 submits/s)."""
    clock = FakeClock(START - 1.0)  # the first create moves it to START
    server = start(clock)
    client = Provider(server, clock)
    try:
        yield client
    finally:
        client.session.close()
        server.stop()


def answers_as(response: requests.Response, name: str) -> Any:
    """Assert the response is the fixture's kind of answer; return its decoded body, if JSON."""
    fixture: Fixture = load(name)
    assert response.status_code == fixture.http_status, (name, response.status_code, response.text)
    content_type = response.headers.get("Content-Type", "")
    assert fixture.content_type is not None
    assert content_type.startswith(fixture.content_type), (name, content_type)
    if not fixture.is_json:
        with pytest.raises(ValueError):
            json.loads(response.content)
        return None
    body = response.json()
    assert_same_shape(fixture.body, body, where=name)
    return body


def query_body(provider: Provider, task_id: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = answers_as(provider.query(task_id), name)
    return body


# --- create ---------------------------------------------------------------------------------


def test_create_ok(provider: Provider) -> None:
    created = provider.create()
    body = answers_as(created.response, "create_ok")
    # The provider always answers a create with PENDING, even when a slot is free.
    assert body["output"]["task_status"] == "PENDING"
    assert body["output"]["task_id"] and body["request_id"]


# --- errors ---------------------------------------------------------------------------------


def assert_error(response: requests.Response, name: str, code: str, message: str | None) -> None:
    body = answers_as(response, name)
    assert body["code"] == code, body
    if message is not None:
        assert body["message"] == message, body
    assert body["request_id"]


def test_invalid_api_key(provider: Provider) -> None:
    for response in (
        provider.create(key="sk-not-a-key").response,
        provider.query("any-task", key="sk-not-a-key"),
        provider.list(key="sk-not-a-key"),
        provider.cancel("any-task", key="sk-not-a-key"),
    ):
        assert_error(response, "error_invalid_api_key", "InvalidApiKey", None)


def test_invalid_parameter(provider: Provider) -> None:
    response = provider.create(n=5).response  # n is 1..4
    assert_error(response, "error_invalid_parameter", "InvalidParameter", None)


def test_input_moderation(provider: Provider) -> None:
    response = provider.create("a cat [sandbox:moderation]").response
    message = "Input data may contain inappropriate content."
    assert_error(response, "error_data_inspection", "DataInspectionFailed", message)


def test_sync_call_refused(provider: Provider) -> None:
    response = provider.create(async_call=False).response
    message = "current user api does not support synchronous calls"
    assert_error(response, "error_access_denied", "AccessDenied", message)


def test_model_not_found(provider: Provider) -> None:
    response = provider.create(model="wan2.5-i2i-previw").response
    assert_error(response, "error_model_not_found", "ModelNotFound", None)


# docs/dashscope.md "Error codes and what to do": the retryable 429 codes.
THROTTLING_CODES = {"Throttling", "Throttling.RateQuota", "Throttling.BurstRate"}


def test_throttled(provider: Provider) -> None:
    provider.configure(throttle_rate=1)
    body = answers_as(provider.create().response, "error_throttling")
    assert body["code"] in THROTTLING_CODES, body
    assert answers_as(provider.query("any-task"), "error_throttling")["code"] in THROTTLING_CODES


def test_documented_rate_limits(provider: Provider) -> None:
    """5 task submissions and 20 status queries per second per main account."""
    for i in range(5):
        assert provider.create(f"burst {i}", advance=0).response.status_code == 200
    body = answers_as(provider.create("one too many", advance=0).response, "error_throttling")
    assert body["code"] in THROTTLING_CODES, body
    provider.clock.advance(1.0)
    for _ in range(20):
        assert provider.query("any-task").status_code == 200
    assert answers_as(provider.query("any-task"), "error_throttling")["code"] in THROTTLING_CODES


def test_internal_error(provider: Provider) -> None:
    provider.configure(http_error_rate=1)
    response = provider.create().response
    assert_error(response, "error_internal", "InternalError", None)


def test_lost_answer_gateway_504(provider: Provider) -> None:
    response = provider.create("a cat [sandbox:lost-504]").response
    answers_as(response, "error_gateway_504")


def test_lost_answer_500(provider: Provider) -> None:
    response = provider.create("a cat [sandbox:lost-500]").response
    assert_error(response, "error_internal", "InternalError", None)


# --- queries --------------------------------------------------------------------------------


def fill_slots(provider: Provider) -> list[Created]:
    """Five RUNNING tasks: the main account's slots are all taken."""
    return [provider.created(f"slot {i}") for i in range(SLOTS)]


def test_query_pending(provider: Provider) -> None:
    fill_slots(provider)
    queued = provider.created("queued")
    output = query_body(provider, queued.task_id, "query_pending")["output"]
    assert output["task_id"] == queued.task_id
    assert output["task_status"] == "PENDING"
    assert output["submit_time"] == beijing(queued.at)


def test_query_running(provider: Provider) -> None:
    created = provider.created()
    provider.clock.advance(DURATION / 2)
    output = query_body(provider, created.task_id, "query_running")["output"]
    assert output["task_status"] == "RUNNING"
    assert output["submit_time"] == beijing(created.at)
    assert output["scheduled_time"] == beijing(created.at)  # a slot was free


def test_query_succeeded(provider: Provider) -> None:
    prompt = "make the sky orange"
    created = provider.created(prompt)
    provider.clock.advance(DURATION + 1)
    body = query_body(provider, created.task_id, "query_succeeded")
    output = body["output"]
    assert output["task_status"] == "SUCCEEDED"
    # Beijing time (UTC+8), to the millisecond.
    assert output["submit_time"] == beijing(created.at)
    assert output["scheduled_time"] == beijing(created.at)
    assert output["end_time"] == beijing(created.at + DURATION)
    assert output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    assert body["usage"] == {"image_count": 1}
    [result] = output["results"]
    assert result["orig_prompt"] == prompt
    assert result["url"].startswith(("http://", "https://"))


@pytest.mark.parametrize(
    ("trigger", "fixture"),
    [
        ("[sandbox:partial]", "query_partial_timeout"),
        ("[sandbox:partial-moderation]", "query_partial_moderation"),
    ],
)
def test_query_partial(provider: Provider, trigger: str, fixture: str) -> None:
    created = provider.created(f"two edits {trigger}", n=2)
    provider.clock.advance(DURATION + 1)
    body = query_body(provider, created.task_id, fixture)
    output = body["output"]
    # SUCCEEDED means at least one image succeeded; only successful images are billed.
    assert output["task_status"] == "SUCCEEDED"
    assert output["task_metrics"] == {"TOTAL": 2, "SUCCEEDED": 1, "FAILED": 1}
    assert body["usage"] == {"image_count": 1}
    documented = load(fixture).body["output"]["results"][1]
    failed = [result for result in output["results"] if "code" in result]
    assert failed == [documented]


def test_query_failed(provider: Provider) -> None:
    created = provider.created("a cat [sandbox:fail]")
    provider.clock.advance(DURATION + 1)
    body = query_body(provider, created.task_id, "query_failed")
    output = body["output"]
    assert output["task_status"] == "FAILED"
    assert output["code"] and output["message"]
    assert output["task_metrics"]["SUCCEEDED"] == 0
    assert output["task_metrics"]["TOTAL"] == 1
    assert "usage" not in body  # nothing billed
    assert output["end_time"] == beijing(created.at + DURATION)


def test_query_unknown(provider: Provider) -> None:
    made_up = "502a00b1-19d9-4839-a82f-000000000000"
    output = query_body(provider, made_up, "query_unknown")["output"]
    assert output == {"task_id": made_up, "task_status": "UNKNOWN"}


# --- the task list --------------------------------------------------------------------------

FIXTURE_ROWS = load("list_page").body["data"] + load("list_page_last").body["data"]


def fixture_row(status: str) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in FIXTURE_ROWS if r["status"] == status)
    return row


def listed(provider: Provider, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = answers_as(provider.list(**params), "list_page")
    return body


@pytest.fixture
def four_tasks(provider: Provider) -> dict[str, Created]:
    """One SUCCEEDED, one FAILED (both ended), then two RUNNING tasks."""
    done = provider.created("first")
    failed = provider.created("second [sandbox:fail]")
    provider.clock.advance(DURATION + 1)
    running = provider.created("third")
    running_too = provider.created("fourth")
    provider.clock.advance(1.0)
    return {"SUCCEEDED": done, "FAILED": failed, "RUNNING": running, "RUNNING 2": running_too}


def test_list_page_one_of_two(provider: Provider, four_tasks: dict[str, Created]) -> None:
    first = listed(provider, page_no=1, page_size=3)
    assert (first["total"], first["total_page"]) == (4, 2)
    assert (first["page_no"], first["page_size"]) == (1, 3)
    assert len(first["data"]) == 3
    last = listed(provider, page_no=2, page_size=3)
    assert (last["total"], last["total_page"], last["page_no"]) == (4, 2, 2)
    assert len(last["data"]) == 1
    ids = [row["task_id"] for row in first["data"] + last["data"]]
    assert sorted(ids) == sorted(task.task_id for task in four_tasks.values())


def test_list_rows(provider: Provider, four_tasks: dict[str, Created]) -> None:
    body = listed(provider)
    # Documented defaults: page_no 1, page_size 10.
    assert (body["page_no"], body["page_size"]) == (1, 10)
    assert body["total"] == 4 and body["total_page"] == 1
    rows = {row["task_id"]: row for row in body["data"]}
    for label, created in four_tasks.items():
        status = label.split()[0]
        row = rows[created.task_id]
        # Running rows have no end_time; ended rows have one.
        assert_same_shape(fixture_row(status), row, where=f"list row ({label})")
        assert row["status"] == status
        assert row["request_id"] == created.body["request_id"]
        assert row["model_name"] == MODEL
        assert row["user_api_unique_key"] == USER_API_UNIQUE_KEY
        # Integer epoch milliseconds: submitted, scheduled (a slot was free), ended.
        assert row["gmt_create"] == epoch_ms(created.at)
        assert row["start_time"] == epoch_ms(created.at)
        if status == "RUNNING":
            assert "end_time" not in row
        else:
            assert row["end_time"] == epoch_ms(created.at + DURATION)


def test_list_row_and_query_are_the_same_instants(
    provider: Provider, four_tasks: dict[str, Created]
) -> None:
    rows = {row["task_id"]: row for row in listed(provider, page_size=10)["data"]}
    task = four_tasks["SUCCEEDED"]
    output = query_body(provider, task.task_id, "query_succeeded")["output"]
    row = rows[task.task_id]
    for ms_key, text_key in (
        ("gmt_create", "submit_time"),
        ("start_time", "scheduled_time"),
        ("end_time", "end_time"),
    ):
        assert beijing(row[ms_key] / 1000) == output[text_key], (ms_key, text_key)


def test_list_filters_read_beijing_time(provider: Provider, four_tasks: dict[str, Created]) -> None:
    first = four_tasks["SUCCEEDED"].at
    last = four_tasks["RUNNING 2"].at
    # Only start_time: the 24 h after it.
    assert listed(provider, start_time=beijing_compact(first - 60))["total"] == 4
    assert listed(provider, start_time=beijing_compact(last + 60))["total"] == 0
    # Only end_time: the 24 h before it.
    assert listed(provider, end_time=beijing_compact(first - 60))["total"] == 0
    assert listed(provider, end_time=beijing_compact(last + 60))["total"] == 4


def test_list_filters_by_status_and_model(
    provider: Provider, four_tasks: dict[str, Created]
) -> None:
    running = listed(provider, status="RUNNING")
    assert running["total"] == 2
    assert {row["status"] for row in running["data"]} == {"RUNNING"}
    assert listed(provider, model_name=MODEL)["total"] == 4
    assert listed(provider, model_name="wanx2.1-t2i-turbo")["total"] == 0


def test_list_and_query_span_the_main_account() -> None:
    """Tasks of any key of a main account are listed and queried with any other of its keys."""
    clock = FakeClock(START - 1.0)
    server = start(clock, api_keys=(KEY,), main_accounts=((KEY, "sk-contract-ram"),))
    client = Provider(server, clock)
    try:
        mine = client.created(key=KEY)
        theirs = client.created(key="sk-contract-ram")
        rows = {row["task_id"]: row for row in listed(client)["data"]}
        assert set(rows) == {mine.task_id, theirs.task_id}
        mine_row, their_row = rows[mine.task_id], rows[theirs.task_id]
        assert mine_row["caller_parent_id"] == their_row["caller_parent_id"]
        assert mine_row["api_key_id"] != their_row["api_key_id"]
        assert their_row["request_id"] == theirs.body["request_id"]
        output = query_body(client, theirs.task_id, "query_running")["output"]
        assert output["task_id"] == theirs.task_id
    finally:
        client.session.close()
        server.stop()


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_pending(provider: Provider) -> None:
    fill_slots(provider)
    queued = provider.created("queued")
    body = answers_as(provider.cancel(queued.task_id), "cancel_ok")
    assert set(body) == {"request_id"} and body["request_id"]
    # A later query shows CANCELED.
    assert provider.query(queued.task_id).json()["output"]["task_status"] == "CANCELED"


def test_cancel_running_refused(provider: Provider) -> None:
    running = provider.created()
    provider.clock.advance(1.0)
    message = "Failed to cancel the task, please confirm if the task is in PENDING status."
    refused = provider.cancel(running.task_id)
    assert_error(refused, "cancel_refused", "UnsupportedOperation", message)
    assert provider.query(running.task_id).json()["output"]["task_status"] == "RUNNING"


# --- the task-end event (EventBridge) -------------------------------------------------------


def test_task_end_event(provider: Provider) -> None:
    with webhook_receiver() as receiver:
        provider.configure(event_url=receiver.url)
        created = provider.created()
        provider.clock.advance(DURATION + 1)  # nobody queries: the event goes out on its own
        deadline = time.monotonic() + TIMEOUT
        while not receiver.received:
            assert time.monotonic() < deadline, "no event arrived"
            time.sleep(0.02)
        event = json.loads(receiver.received[0].body)
    fixture = load("event_async_task_finish")
    assert fixture.http_status is None  # a message the provider sends, not an answer
    assert_same_shape(fixture.body, event, where="event_async_task_finish")
    data = event["data"]
    assert (data["task_id"], data["task_status"]) == (created.task_id, "SUCCEEDED")
    assert data["request_id"] == created.body["request_id"]
    # Beijing time (UTC+8) to the second in data; the envelope in UTC with milliseconds.
    assert data["start_time"] == beijing(created.at)[:19]
    assert data["end_time"] == beijing(created.at + DURATION)[:19]
    end = datetime.fromtimestamp(created.at + DURATION, tz=UTC)
    assert event["time"] == end.strftime("%Y-%m-%dT%H:%M:%S.") + f"{end.microsecond // 1000:03d}Z"
    for key in ("source", "type", "specversion", "aliyuneventbusname", "datacontenttype"):
        assert event[key] == fixture.body[key], key
    assert data["user_api_unique_key"] == fixture.body["data"]["user_api_unique_key"]
    assert data["contain_result"] is False
