"""The shape helper catches each kind of drift, and only drift."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.contract.fixtures import load
from tests.contract.shapes import assert_same_shape, differences, json_type, shape

QUERY: dict[str, Any] = {
    "request_id": "r",
    "output": {
        "task_id": "t",
        "task_status": "SUCCEEDED",
        "results": [
            {"url": "u", "orig_prompt": "p", "actual_prompt": "q"},
            {"code": "InternalError.Timeout", "message": "m"},
        ],
        "task_metrics": {"TOTAL": 2, "SUCCEEDED": 1, "FAILED": 1},
    },
    "usage": {"image_count": 1},
}


def drifted(change) -> dict[str, Any]:
    body = copy.deepcopy(QUERY)
    change(body)
    return body


def fails(fixture: Any, actual: Any, *fragments: str) -> str:
    with pytest.raises(AssertionError) as info:
        assert_same_shape(fixture, actual, where="answer")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_json_types() -> None:
    values: list[Any] = [None, True, 1, 1.0, "1", [], {}]
    assert [json_type(v) for v in values] == [
        "null",
        "boolean",
        "integer",
        "number",
        "string",
        "array",
        "object",
    ]
    with pytest.raises(TypeError):
        json_type(object())


def test_shape_describes_keys_types_nesting_and_item_variants() -> None:
    assert shape(QUERY) == {
        "request_id": "string",
        "output": {
            "task_id": "string",
            "task_status": "string",
            "results": [
                {"url": "string", "orig_prompt": "string", "actual_prompt": "string"},
                {"code": "string", "message": "string"},
            ],
            "task_metrics": {"TOTAL": "integer", "SUCCEEDED": "integer", "FAILED": "integer"},
        },
        "usage": {"image_count": "integer"},
    }
    # Items of one shape appear once.
    assert shape([1, 2, 3]) == ["integer"]
    assert shape([{"a": 1}, {"a": 2}]) == [{"a": "integer"}]


def test_same_shape_with_other_values_passes() -> None:
    other = drifted(lambda b: b["output"].update(task_id="another", task_status="FAILED"))
    other["usage"]["image_count"] = 7
    assert differences(QUERY, other) == []
    assert_same_shape(QUERY, other)


def test_key_order_does_not_matter() -> None:
    reordered = {key: QUERY[key] for key in reversed(list(QUERY))}
    assert_same_shape(QUERY, reordered)


def test_missing_key_is_named_with_its_path() -> None:
    actual = drifted(lambda b: b["output"]["task_metrics"].pop("TOTAL"))
    fails(QUERY, actual, "answer.output.task_metrics: missing key 'TOTAL'")


def test_extra_key_is_named_with_its_path() -> None:
    actual = drifted(lambda b: b["output"].update(code="X"))
    fails(QUERY, actual, "answer.output: extra key 'code' (string)")


def test_renamed_key_shows_as_missing_and_extra() -> None:
    row = {"task_id": "t", "status": "RUNNING"}
    fails(row, {"task_id": "t", "task_status": "RUNNING"}, "missing key 'status'", "extra key")


def test_int_versus_string_is_a_mismatch() -> None:
    row = {"gmt_create": 1761207496009}
    fails(row, {"gmt_create": "2025-10-23 16:18:16.009"}, "answer.gmt_create: type mismatch")
    fails({"api_key_id": "1"}, {"api_key_id": 1}, "fixture has string", "actual has integer")


def test_float_versus_int_is_a_mismatch() -> None:
    fails({"gmt_create": 1761207496009}, {"gmt_create": 1761207496009.0}, "actual has number")
    fails({"ratio": 1.5}, {"ratio": 2}, "fixture has number", "actual has integer")


def test_bool_is_not_an_int() -> None:
    fails({"image_count": 1}, {"image_count": True}, "actual has boolean")
    fails({"contain_result": False}, {"contain_result": 0}, "actual has integer")


def test_null_matches_null_only() -> None:
    assert_same_shape({"usage": None}, {"usage": None})
    fails({"usage": None}, {"usage": {"image_count": 1}}, "fixture has null", "actual has object")
    fails({"usage": {"image_count": 1}}, {"usage": None}, "fixture has object", "actual has null")
    fails({"code": None}, {"code": ""}, "answer.code: type mismatch")


def test_object_versus_array_and_scalar_at_the_top() -> None:
    fails({"a": 1}, [{"a": 1}], "answer: type mismatch")
    fails([1], "1", "answer: type mismatch")


def test_array_items_are_checked_against_the_fixture_variants() -> None:
    # Both variants of a result (an image, a per-image error) are fine, in any number and order.
    actual = drifted(lambda b: b["output"]["results"].reverse())
    actual["output"]["results"].append({"code": "DataInspectionFailed", "message": "m"})
    assert_same_shape(QUERY, actual)
    assert_same_shape(QUERY, drifted(lambda b: b["output"].update(results=[])))


def test_an_array_item_of_no_known_shape_is_named() -> None:
    actual = drifted(lambda b: b["output"]["results"].append({"url": "u"}))
    message = fails(QUERY, actual, "answer.output.results[2]: matches none of the fixture's 2")
    # The closest variant's differences are reported.
    assert "answer.output.results[2]: missing key 'orig_prompt'" in message


def test_an_item_with_a_drifted_type_is_named() -> None:
    fails({"data": [{"end_time": 1}]}, {"data": [{"end_time": 1}, {"end_time": "x"}]}, "data[1]")


def test_empty_fixture_array_says_nothing_about_items() -> None:
    assert_same_shape({"results": []}, {"results": [{"url": "u"}]})
    fails({"results": []}, {"results": {}}, "answer.results: type mismatch")


def test_every_difference_is_reported_at_once() -> None:
    def change(b: dict[str, Any]) -> None:
        b["usage"]["image_count"] = "1"
        b["output"].pop("task_id")
        b["output"]["extra"] = 1

    found = differences(QUERY, drifted(change))
    assert len(found) == 3, found


def test_real_fixtures_catch_real_drift() -> None:
    """The drifts the old sandbox had: list rows with task_status and time strings."""
    row = load("list_page").body["data"][0]
    old_row = {
        "task_id": row["task_id"],
        "task_status": "RUNNING",
        "model_name": row["model_name"],
        "submit_time": "2025-10-23 16:21:05.233",
        "scheduled_time": "2025-10-23 16:21:05.260",
    }
    message = fails(row, old_row, "missing key 'status'", "missing key 'gmt_create'")
    assert "extra key 'task_status'" in message
    cancel = load("cancel_ok").body
    fails(cancel, {**cancel, "output": {"task_id": "t", "task_status": "CANCELED"}}, "extra key")
