"""The fixture files: their format, and the ids and times they share agreeing with each other."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.contract.fixtures import DIRECTORY, LIST_ROW_KEYS, Fixture, load, names, parse

BEIJING = timezone(timedelta(hours=8))
TIME_MS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
TIME_S = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")

ERRORS = {
    "error_invalid_parameter": (400, "InvalidParameter", None),
    "error_data_inspection": (
        400,
        "DataInspectionFailed",
        "Input data may contain inappropriate content.",
    ),
    "error_arrearage": (400, "Arrearage", None),
    "error_invalid_api_key": (401, "InvalidApiKey", None),
    "error_access_denied": (
        403,
        "AccessDenied",
        "current user api does not support synchronous calls",
    ),
    "error_model_not_found": (404, "ModelNotFound", None),
    "error_throttling": (429, "Throttling.RateQuota", None),
    "error_free_quota": (429, "Throttling.AllocationQuota", "Free allocated quota exceeded."),
    "error_internal": (500, "InternalError", None),
    "cancel_refused": (
        400,
        "UnsupportedOperation",
        "Failed to cancel the task, please confirm if the task is in PENDING status.",
    ),
}
QUERIES = {
    "query_pending": "PENDING",
    "query_running": "RUNNING",
    "query_succeeded": "SUCCEEDED",
    "query_partial_timeout": "SUCCEEDED",
    "query_partial_moderation": "SUCCEEDED",
    "query_failed": "FAILED",
    "query_unknown": "UNKNOWN",
}
REQUIRED = {
    "create_ok",
    "error_gateway_504",
    "list_page",
    "list_page_last",
    "cancel_ok",
    "event_async_task_finish",
    *ERRORS,
    *QUERIES,
}
ROW_KEYS = LIST_ROW_KEYS


def beijing_ms(text: str) -> int:
    """A provider time string (Beijing time) as epoch milliseconds."""
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    moment = datetime.strptime(text, fmt).replace(tzinfo=BEIJING)
    return round(moment.timestamp() * 1000)


def rows() -> dict[str, dict]:
    return {r["task_id"]: r for n in ("list_page", "list_page_last") for r in load(n).body["data"]}


def test_every_required_fixture_exists() -> None:
    missing = REQUIRED - set(names())
    assert not missing, sorted(missing)


@pytest.mark.parametrize("name", names())
def test_file_format(name: str) -> None:
    text = (DIRECTORY / f"{name}.json").read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first.startswith("// ") and len(first) > 10
    fixture = load(name)
    assert fixture.name == name
    assert fixture.source == first[3:].strip()
    if fixture.text is None:
        assert fixture.content_type == "application/json"
        assert isinstance(fixture.body, dict)
        assert json.loads(fixture.raw()) == fixture.body
    else:
        assert fixture.body is None and fixture.content_type


def test_parse_refuses_broken_files() -> None:
    good = '// src\n// more\n{"http_status": 200, "body": {}}'
    assert parse("x", good) == Fixture("x", "src", 200, {}, None, "application/json")
    for bad in (
        '{"http_status": 200, "body": {}}',  # no source line
        "// src\n[]",
        '// src\n{"body": {}}',
        '// src\n{"http_status": "200", "body": {}}',
        '// src\n{"http_status": 200}',
        '// src\n{"http_status": 200, "body": {}, "text": ""}',
        '// src\n{"http_status": 504, "text": "<html/>"}',  # no content_type
        '// src\n{"http_status": 200, "body": {}, "status": 1}',
    ):
        with pytest.raises(ValueError):
            parse("x", bad)
    with pytest.raises(FileNotFoundError):
        load("no_such_fixture")


def test_constructed_fixtures_say_so() -> None:
    for name in ("error_gateway_504", "query_pending", "query_running", "event_async_task_finish"):
        assert load(name).source.startswith("constructed from "), name


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_bodies_are_flat(name: str) -> None:
    status, code, message = ERRORS[name]
    fixture = load(name)
    assert fixture.http_status == status
    assert set(fixture.body) == {"code", "message", "request_id"}
    assert fixture.body["code"] == code
    if message is not None:
        assert fixture.body["message"] == message


def test_gateway_504_is_not_json() -> None:
    fixture = load("error_gateway_504")
    assert (fixture.http_status, fixture.content_type) == (504, "text/html")
    assert fixture.text is not None and "<html>" in fixture.text
    with pytest.raises(ValueError):
        json.loads(fixture.raw())


def test_create_ok() -> None:
    body = load("create_ok").body
    assert load("create_ok").http_status == 200
    assert set(body) == {"request_id", "output"}
    assert body["output"]["task_status"] == "PENDING"


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries(name: str) -> None:
    fixture = load(name)
    output = fixture.body["output"]
    assert fixture.http_status == 200
    assert output["task_status"] == QUERIES[name]
    for key in ("submit_time", "scheduled_time", "end_time"):
        if key in output:
            assert TIME_MS.match(output[key]), (key, output[key])
    if QUERIES[name] == "SUCCEEDED":
        metrics, results = output["task_metrics"], output["results"]
        assert metrics["TOTAL"] == len(results) == metrics["SUCCEEDED"] + metrics["FAILED"]
        assert fixture.body["usage"]["image_count"] == metrics["SUCCEEDED"]
        assert sum("url" in r for r in results) == metrics["SUCCEEDED"] >= 1
    else:
        assert "usage" not in fixture.body


def test_partial_results_carry_the_documented_codes() -> None:
    timeout = load("query_partial_timeout").body["output"]["results"][1]
    moderation = load("query_partial_moderation").body["output"]["results"][1]
    assert timeout["code"] == "InternalError.Timeout"
    assert moderation == {
        "code": "DataInspectionFailed",
        "message": "Output data may contain inappropriate content.",
    }
    for name in ("query_partial_timeout", "query_partial_moderation"):
        output = load(name).body["output"]
        assert output["task_metrics"] == {"TOTAL": 2, "SUCCEEDED": 1, "FAILED": 1}


def test_failed_and_unknown() -> None:
    failed = load("query_failed").body["output"]
    assert failed["code"] and failed["message"]
    assert failed["task_metrics"]["SUCCEEDED"] == 0
    unknown = load("query_unknown").body["output"]
    assert set(unknown) == {"task_id", "task_status"}


@pytest.mark.parametrize("name", ["list_page", "list_page_last"])
def test_list_pages(name: str) -> None:
    body = load(name).body
    assert set(body) == {"request_id", "total", "total_page", "page_no", "page_size", "data"}
    assert body["total_page"] == -(-body["total"] // body["page_size"])
    assert len(body["data"]) <= body["page_size"]
    for row in body["data"]:
        ended = row["status"] not in ("PENDING", "RUNNING")
        assert set(row) == (ROW_KEYS if ended else ROW_KEYS - {"end_time"}), row
        for key in ("gmt_create", "start_time", "end_time"):
            if key in row:
                assert type(row[key]) is int and row[key] > 10**12, (key, row[key])
        assert row["gmt_create"] <= row["start_time"] <= row.get("end_time", row["start_time"])
    # Newest first, as the documented example.
    created = [row["gmt_create"] for row in body["data"]]
    assert created == sorted(created, reverse=True)


def test_list_page_one_of_two_with_running_and_ended_rows() -> None:
    first, last = load("list_page").body, load("list_page_last").body
    assert (first["page_no"], first["total_page"], last["page_no"]) == (1, 2, 2)
    assert first["total"] > first["page_size"]
    assert first["total"] == len(first["data"]) + len(last["data"])
    statuses = {row["status"] for row in first["data"]}
    assert {"RUNNING", "SUCCEEDED", "FAILED"} <= statuses
    ids = [row["task_id"] for row in first["data"] + last["data"]]
    assert len(ids) == len(set(ids))


def test_query_times_agree_with_list_rows() -> None:
    """A query's Beijing-time strings and its list row's epoch ms are the same instants."""
    listed = rows()
    checked = 0
    for name in QUERIES:
        output = load(name).body["output"]
        row = listed.get(output["task_id"])
        if row is None:
            continue
        checked += 1
        assert row["status"] == output["task_status"], name
        assert row["gmt_create"] == beijing_ms(output["submit_time"]), name
        assert row["start_time"] == beijing_ms(output["scheduled_time"]), name
        if "end_time" in output:
            assert row["end_time"] == beijing_ms(output["end_time"]), name
        else:
            assert "end_time" not in row
    assert checked >= 5


def test_create_answer_and_list_row_share_the_request_id() -> None:
    created = load("create_ok").body
    row = rows()[created["output"]["task_id"]]
    assert row["request_id"] == created["request_id"]
    assert load("query_succeeded").body["output"]["task_id"] == created["output"]["task_id"]


def test_cancel_answers() -> None:
    ok = load("cancel_ok")
    assert ok.http_status == 200 and set(ok.body) == {"request_id"}
    assert load("cancel_refused").http_status == 400


def test_event() -> None:
    fixture = load("event_async_task_finish")
    event = fixture.body
    assert fixture.http_status is None
    assert event["specversion"] == "1.0"
    assert event["source"] == "acs.dashscope"
    assert event["type"] == "dashscope:System:AsyncTaskFinish"
    assert event["aliyuneventbusname"] == "default"
    for key in ("id", "time", "aliyunaccountid", "aliyunpublishtime", "aliyunregionid"):
        assert isinstance(event[key], str) and event[key], key
    assert event["datacontenttype"].startswith("application/json")
    data = event["data"]
    assert set(data) == {
        "task_id",
        "task_status",
        "request_id",
        "start_time",
        "end_time",
        "region",
        "api_key_id",
        "user_api_unique_key",
        "contain_result",
    }
    assert data["contain_result"] is False
    unique_key = "apikey:v1:aigc:image2image:image-synthesis:wan2.5-i2i-preview"
    assert data["user_api_unique_key"] == unique_key
    assert TIME_S.match(data["start_time"]) and TIME_S.match(data["end_time"])


def test_event_agrees_with_the_task_it_reports() -> None:
    event = load("event_async_task_finish").body
    data = event["data"]
    row = rows()[data["task_id"]]
    assert (data["task_status"], data["request_id"]) == (row["status"], row["request_id"])
    assert (data["api_key_id"], data["region"]) == (row["api_key_id"], row["region"])
    assert event["aliyunaccountid"] == row["caller_parent_id"]
    assert data["user_api_unique_key"] == row["user_api_unique_key"]
    # Beijing-time seconds in data, the same instants as the row's milliseconds.
    assert beijing_ms(data["end_time"]) == row["end_time"] // 1000 * 1000
    assert beijing_ms(data["start_time"]) == row["start_time"] // 1000 * 1000
    # The envelope is UTC: published within seconds after the (UTC+8) end_time.
    published = datetime.strptime(event["aliyunpublishtime"], "%Y-%m-%dT%H:%M:%S.%fZ")
    lag = published.replace(tzinfo=UTC).timestamp() * 1000 - beijing_ms(data["end_time"])
    assert 0 <= lag < 10_000, lag
