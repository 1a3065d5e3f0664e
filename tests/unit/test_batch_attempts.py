"""A line's attempts: each has its own idempotency key, and each key still names its batch."""

from __future__ import annotations

import pytest

from wanedit.intake.lines import BatchLine
from wanedit.intake.manifest import Line, batch_of, idempotency_key
from wanedit.intake.retry import attempt_key

LINE = Line(12, "ab" * 32, fields={"prompt": "p", "images": ["s3://b/a.png"]})


@pytest.mark.parametrize("batch_id", ["3f2a9c0d1e2b4a5c", "nightly-20261125T0230Z", "a.b_c"])
@pytest.mark.parametrize("attempt", [1, 2, 3, 17])
def test_every_attempt_key_names_its_batch(batch_id: str, attempt: int) -> None:
    first = idempotency_key(batch_id, LINE)
    assert batch_of(attempt_key(first, attempt)) == batch_id


def test_attempt_keys_differ_and_the_first_is_the_lines_own() -> None:
    first = idempotency_key("b1", LINE)
    keys = [attempt_key(first, attempt) for attempt in range(1, 6)]
    assert keys[0] == first
    assert len(set(keys)) == 5
    assert keys[1] == f"{first}.a2"


@pytest.mark.parametrize(
    ("line", "inputs", "prompt", "attempts"),
    [
        (BatchLine(1, {"prompt": "p", "images": ["a.png", "https://x/b.png"]}, "j2", ["j1"]),
         ["a.png", "https://x/b.png"], "p", 2),
        (BatchLine(2, {"prompt": "q", "images": ["s3://b/k.png"]}, "j1"), ["s3://b/k.png"], "q", 1),
        (BatchLine(3, {"prompt": "r", "n": 9, "images": ["a.png"]}, None, error="n: 9"),
         ["a.png"], "r", 0),
        (BatchLine(4, None, None, error="not valid JSON"), [], None, 0),
    ],
)  # fmt: skip
def test_a_line_reads_as_the_manifest_named_it(line, inputs, prompt, attempts) -> None:
    assert (line.inputs, line.prompt, line.attempts) == (inputs, prompt, attempts)


def test_a_batch_counts_each_lines_latest_attempt_and_bills_every_attempt() -> None:
    from wanedit.intake.progress import summarize

    def job(status: str, billed: int = 0, code: str | None = None) -> dict:
        usage = {"image_count": billed, "cost": billed * 0.25, "currency": "CNY"}
        return {
            "status": status,
            "error": {"code": code, "message": "m"} if code else None,
            "usage": usage if billed else None,
        }

    latest = [job("succeeded", 1), job("succeeded", 1), job("running")]
    earlier = [job("failed", 0, "InternalError"), job("failed", 1, "WorkerLost")]
    status = summarize({"id": "b1", "started": "100"}, latest, {}, 110.0, earlier)
    assert (status["done"], status["failed"], status["running"]) == (2, 0, 1)
    assert status["failures_by_code"] == {}
    assert status["retried_attempts"] == 2
    assert (status["images_billed"], status["cost"]) == (3, 0.75)
