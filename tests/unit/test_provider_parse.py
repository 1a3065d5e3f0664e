"""Provider answers: well-formed ones parse, malformed ones raise MalformedResponse."""

from __future__ import annotations

import pytest

from wanedit.errors import MalformedResponse
from wanedit.workers.provider import ListedTask, parse_created, parse_list_page, parse_task

SUCCEEDED = {
    "request_id": "r1",
    "output": {
        "task_id": "t1",
        "task_status": "SUCCEEDED",
        "results": [
            {"url": "https://x/1.png", "orig_prompt": "p", "actual_prompt": "p, detailed"},
            {"code": "InternalError.Algo", "message": "one failed"},
        ],
        "submit_time": "2025-10-23 16:18:16.009",
        "scheduled_time": "2025-10-23 16:18:16.040",
        "end_time": "2025-10-23 16:19:09.591",
        "task_metrics": {"TOTAL": 2, "SUCCEEDED": 1, "FAILED": 1},
    },
    "usage": {"image_count": 1},
}


def test_succeeded_with_a_partial_failure():
    state = parse_task(SUCCEEDED, "t1")
    assert state.status == "SUCCEEDED"
    assert state.image_count == 1
    assert state.results[0].url == "https://x/1.png"
    assert state.results[0].actual_prompt == "p, detailed"
    assert (state.results[1].url, state.results[1].code) == (None, "InternalError.Algo")
    assert state.times["end_time"] == "2025-10-23 16:19:09.591"


def test_failed_carries_code_and_message():
    body = {"output": {"task_id": "t1", "task_status": "FAILED", "code": "X", "message": "m"}}
    state = parse_task(body, "t1")
    assert (state.status, state.code, state.message) == ("FAILED", "X", "m")


def test_unknown_has_no_code():
    state = parse_task({"output": {"task_id": "t1", "task_status": "UNKNOWN"}}, "t1")
    assert state.status == "UNKNOWN"
    assert state.code is None


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "text",
        {},
        {"output": "x"},
        {"output": {"task_status": "DONE"}},
        {"output": {"task_status": 3}},
        {"output": {"task_status": "SUCCEEDED", "results": "x"}},
        {"output": {"task_status": "SUCCEEDED", "results": [1]}},
        {"output": {"task_status": "SUCCEEDED", "results": [{}]}},
        {"output": {"task_status": "SUCCEEDED", "results": []}},
        {"output": {"task_status": "SUCCEEDED", "results": [{"code": "X"}]}},
        {"output": {"task_status": "RUNNING"}, "usage": {"image_count": "2"}},
        # Billed and counted against the daily cap: only 0 to n images is believable.
        {"output": {"task_status": "RUNNING"}, "usage": {"image_count": -3}},
        {"output": {"task_status": "RUNNING"}, "usage": {"image_count": True}},
        {"output": {"task_status": "RUNNING"}, "usage": {"image_count": 10**30}},
    ],
)
def test_malformed_answers(body):
    with pytest.raises(MalformedResponse):
        parse_task(body, "t1")


def test_created():
    assert parse_created(
        {"output": {"task_id": "t9", "task_status": "PENDING"}, "request_id": "r"}
    ) == (
        "t9",
        "r",
    )
    for body in (None, {}, {"output": {}}, {"output": {"task_id": 5}}):
        with pytest.raises(MalformedResponse):
            parse_created(body)


def test_list_page():
    body = {
        "request_id": "r",
        "total": 3,
        "total_page": 2,
        "page_no": 1,
        "page_size": 2,
        "data": [
            {
                "task_id": "t1",
                "status": "SUCCEEDED",
                "request_id": "c1",
                "gmt_create": 1761207496009,
                "start_time": 1761207496040,
                "end_time": 1761207549591,
                "api_key_id": "k",
            },
            {"task_id": "t2", "status": "RUNNING", "gmt_create": 1761207500000},
        ],
    }
    page = parse_list_page(body)
    assert (page.total, page.total_page, page.page_no, page.page_size) == (3, 2, 1, 2)
    assert page.rows == [
        ListedTask("t1", "SUCCEEDED", "c1", 1761207496.009, 1761207496.04, 1761207549.591, "k"),
        ListedTask("t2", "RUNNING", None, 1761207500.0),
    ]
    assert [row.has_ended for row in page.rows] == [True, False]


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"data": "x"},
        {"data": [1], "total": 1, "total_page": 1, "page_no": 1, "page_size": 10},
        {"data": [{"status": "RUNNING"}], "total": 1, "total_page": 1, "page_no": 1},
        # the key is `status`: a `task_status` row is not the documented shape
        {
            "data": [{"task_id": "t", "task_status": "RUNNING"}],
            "total": 1,
            "total_page": 1,
            "page_no": 1,
            "page_size": 10,
        },
        {"data": [{"task_id": "t", "status": "DONE"}], "total": 1, "total_page": 1},
        # no paging fields: the pages cannot be walked
        {"data": []},
        {"data": [], "total": "1", "total_page": 1, "page_no": 1, "page_size": 10},
    ],
)
def test_malformed_list_answers(body):
    with pytest.raises(MalformedResponse):
        parse_list_page(body)
