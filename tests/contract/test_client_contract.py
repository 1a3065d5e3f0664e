"""The provider client reads every documented answer: each fixture served over real HTTP.

A server answers every request with the fixture a test puts in front of it, so each answer goes
through the client's whole path (status, body cap, JSON decoding, error classification, parsing).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.contract.fixtures import Fixture, load, names
from wanedit.errors import (
    OutcomeUnknown,
    ProviderError,
    TerminalProviderError,
    TransientProviderError,
)
from wanedit.workers.client import ProviderClient, make_session
from wanedit.workers.provider import parse_finish_event

pytestmark = pytest.mark.integration
MODEL = "wan2.5-i2i-preview"
PAYLOAD = {"input": {"prompt": "p", "images": ["https://example.com/a.png"]}, "parameters": {}}


class Provider:
    """A server that answers with whichever fixture is current, and records what it was asked."""

    def __init__(self) -> None:
        self.fixture: Fixture | None = None
        self.asked: list[str] = []
        self._server = make_server("127.0.0.1", 0, Request.application(self._answer), threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_port}/api/v1"

    def _answer(self, request: Request) -> Response:
        self.asked.append(request.full_path)
        fixture = self.fixture
        assert fixture is not None and fixture.http_status is not None
        return Response(fixture.raw(), fixture.http_status, content_type=fixture.content_type)

    def client(self, name: str) -> ProviderClient:
        self.fixture = load(name)
        return ProviderClient(make_session(), self.base_url, "sk-test", read_timeout=5.0)

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    server = Provider()
    yield server
    server.stop()


def beijing(text: str) -> float:
    """A Beijing-time string as unix seconds, computed independently of the client."""
    layout = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(text, layout).replace(tzinfo=UTC).timestamp() - 8 * 3600


COVERED: set[str] = set()


def covers(*fixture_names: str):
    COVERED.update(fixture_names)
    return pytest.mark.parametrize("name", fixture_names)


@covers("create_ok")
def test_create_ok(provider, name):
    body = load(name).body
    assert provider.client(name).create(MODEL, PAYLOAD) == (
        body["output"]["task_id"],
        body["request_id"],
    )


# How each documented error answer is classified, for a create and for any other call.
REFUSED = {
    "error_invalid_parameter": (TerminalProviderError, False),
    "error_data_inspection": (TerminalProviderError, False),
    "error_arrearage": (TerminalProviderError, False),
    "error_invalid_api_key": (TerminalProviderError, False),
    "error_access_denied": (TerminalProviderError, False),
    "error_model_not_found": (TerminalProviderError, False),
    "error_throttling": (TransientProviderError, True),
    "error_free_quota": (TerminalProviderError, False),
}


@covers(*REFUSED)
def test_an_error_that_refuses_a_create_proves_no_task_was_made(provider, name):
    cls, throttled = REFUSED[name]
    body = load(name).body
    with pytest.raises(ProviderError) as raised:
        provider.client(name).create(MODEL, PAYLOAD)
    error = raised.value
    assert type(error) is cls, "a refusal is never OutcomeUnknown: it must not be reconciled"
    assert (error.code, error.message, error.request_id) == (
        body["code"],
        body["message"],
        body["request_id"],
    )
    assert (error.http_status, error.throttled) == (load(name).http_status, throttled)


@covers("error_internal", "error_gateway_504")
def test_a_5xx_or_a_gateway_page_leaves_a_create_unknown(provider, name):
    fixture = load(name)
    with pytest.raises(OutcomeUnknown) as raised:
        provider.client(name).create(MODEL, PAYLOAD)
    # A JSON error's request id is the one the task's list row would carry: reconcile uses it.
    expected = fixture.body["request_id"] if fixture.is_json else None
    assert (raised.value.request_id, raised.value.http_status) == (expected, fixture.http_status)
    # The same answer to a query is a plain transient error: a query makes nothing.
    with pytest.raises(TransientProviderError) as queried:
        provider.client(name).get("t1")
    assert not isinstance(queried.value, OutcomeUnknown)


@covers("query_pending", "query_running")
def test_a_task_in_flight(provider, name):
    output = load(name).body["output"]
    task = provider.client(name).get(output["task_id"])
    assert (task.task_id, task.status, task.results, task.image_count) == (
        output["task_id"],
        output["task_status"],
        [],
        None,
    )
    assert task.times["submit_time"] == output["submit_time"]


@covers("query_succeeded", "query_partial_timeout", "query_partial_moderation")
def test_a_succeeded_task_with_each_per_image_outcome(provider, name):
    body = load(name).body
    output = body["output"]
    task = provider.client(name).get(output["task_id"])
    assert task.status == "SUCCEEDED"
    assert task.image_count == body["usage"]["image_count"]
    assert [(item.url, item.code, item.message) for item in task.results] == [
        (raw.get("url"), raw.get("code"), raw.get("message")) for raw in output["results"]
    ]
    assert sum(1 for item in task.results if item.url) == output["task_metrics"]["SUCCEEDED"]
    assert task.results[0].actual_prompt == output["results"][0]["actual_prompt"]
    for key in ("submit_time", "scheduled_time", "end_time"):
        assert task.times[key] == output[key]


@covers("query_failed")
def test_a_failed_task(provider, name):
    output = load(name).body["output"]
    task = provider.client(name).get(output["task_id"])
    assert (task.status, task.code, task.message) == ("FAILED", output["code"], output["message"])
    assert task.image_count is None  # nothing billed


@covers("query_unknown")
def test_an_unknown_task(provider, name):
    task = provider.client(name).get("gone")
    assert (task.status, task.code, task.results) == ("UNKNOWN", None, [])


@covers("list_page", "list_page_last")
def test_a_list_page(provider, name):
    body = load(name).body
    client = provider.client(name)
    page = client.list_page(MODEL, 1761206400.0, 1761210000.0, page_no=body["page_no"])
    assert (page.total, page.total_page, page.page_no, page.page_size) == tuple(
        body[key] for key in ("total", "total_page", "page_no", "page_size")
    )
    assert len(page.rows) == len(body["data"])
    for row, raw in zip(page.rows, body["data"], strict=True):
        assert (row.task_id, row.status, row.request_id, row.api_key_id) == (
            raw["task_id"],
            raw["status"],
            raw["request_id"],
            raw["api_key_id"],
        )
        assert row.submitted == raw["gmt_create"] / 1000
        assert row.started == raw["start_time"] / 1000
        assert row.ended == (raw["end_time"] / 1000 if "end_time" in raw else None)
        assert row.has_ended == ("end_time" in raw)
    # The window went out in Beijing time: 2025-10-23 08:00:00 UTC is 16:00:00 there.
    assert "start_time=20251023160000&end_time=20251023170000" in provider.asked[-1]


def test_the_list_rows_match_the_query_answers_of_the_same_tasks(provider):
    """The fixtures describe one account: a row's epoch times are the query's Beijing times."""
    rows = {row["task_id"]: row for row in load("list_page").body["data"]}
    for name in ("query_succeeded", "query_failed"):
        output = load(name).body["output"]
        row = rows[output["task_id"]]
        assert beijing(output["submit_time"]) == row["gmt_create"] / 1000
        assert beijing(output["end_time"]) == row["end_time"] / 1000


@covers("cancel_ok")
def test_cancel_ok(provider, name):
    assert provider.client(name).cancel("f6b9d3e1") is None


@covers("cancel_refused")
def test_cancel_refused(provider, name):
    body = load(name).body
    with pytest.raises(TerminalProviderError) as raised:
        provider.client(name).cancel("a-running-task")
    assert (raised.value.code, raised.value.message) == (body["code"], body["message"])


@covers("event_async_task_finish")
def test_the_task_finish_event(provider, name):
    body = load(name).body
    event = parse_finish_event(body, 8.0)
    assert (event.event_id, event.task_id, event.task_status, event.request_id) == (
        body["id"],
        body["data"]["task_id"],
        body["data"]["task_status"],
        body["data"]["request_id"],
    )
    # Its Beijing-time end_time, read as such, is the UTC moment EventBridge stamped.
    published = datetime.fromisoformat(body["aliyunpublishtime"].replace("Z", "+00:00"))
    assert event.ended is not None and 0 <= published.timestamp() - event.ended < 1


def test_every_fixture_is_read_by_a_test_here():
    assert set(names()) <= COVERED, f"fixtures no parser test reads: {set(names()) - COVERED}"
