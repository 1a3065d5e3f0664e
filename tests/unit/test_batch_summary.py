"""A batch's counts, failures by code, cost and ETA, from its job records."""

from __future__ import annotations

from typing import Any

import pytest

from wanedit.intake.batch import summarize


def job(status: str, code: str | None = None, billed: int = 0) -> dict[str, Any]:
    return {
        "status": status,
        "error": {"code": code, "message": "m"} if code else None,
        "usage": {"image_count": billed, "cost": billed * 0.25, "currency": "CNY"}
        if billed
        else None,
    }


INFO = {"id": "b1", "source": "s3://bkt/m.jsonl", "output": "s3://bkt/o/b1/", "total": "6"}


@pytest.mark.parametrize(
    ("jobs", "now", "expected"),
    [
        ([], 100.0, {"done": 0, "failed": 0, "running": 0, "eta_seconds": 0}),
        # Two of four ended in 10 s: two more take about 10 s.
        (
            [
                job("succeeded", billed=1),
                job("failed", "DataInspectionFailed"),
                job("queued"),
                job("running"),
            ],
            110.0,
            {"done": 1, "failed": 1, "running": 2, "eta_seconds": 10.0},
        ),
        ([job("queued")], 110.0, {"done": 0, "failed": 0, "running": 1, "eta_seconds": None}),
    ],
)
def test_counts_and_eta(jobs, now, expected):
    status = summarize({**INFO, "started": "100.0"}, jobs, {}, now)
    assert {key: status[key] for key in expected} == expected


def test_failures_by_code_billing_and_invalid_lines():
    jobs = [
        job("succeeded", billed=2),
        job("succeeded", billed=1),
        job("failed", "DataInspectionFailed"),
        job("failed", "DataInspectionFailed"),
        job("canceled", "Canceled"),
    ]
    status = summarize(INFO, jobs, {"10": "n: 9 is outside 1 to 4 images", "3": "bad"}, 5.0)
    assert status["by_status"] == {"succeeded": 2, "failed": 2, "canceled": 1}
    assert status["failures_by_code"] == {"DataInspectionFailed": 2, "Canceled": 1}
    assert (status["images_billed"], status["cost"], status["currency"]) == (3, 0.75, "CNY")
    assert (status["total"], status["enqueued"], status["invalid"]) == (6, 5, 2)
    assert [line["line"] for line in status["invalid_lines"]] == [3, 10]
