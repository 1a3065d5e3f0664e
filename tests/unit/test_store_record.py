"""The job record's one schema: each field written and read back as its type says, and the
phase derived from the fields."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from wanedit.states import Status
from wanedit.store.record import Job, Phase, encode_fields


def hash_of(changes: dict[str, Any]) -> dict[str, str]:
    flat = encode_fields(changes)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def job(status: Status = Status.QUEUED, **values: Any) -> Job:
    return Job(id="j1", status=status, **values)


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("status", Status.RUNNING, "running"),
        ("output_uri", "s3://b/o/", "s3://b/o/"),
        ("request", {"prompt": "p", "n": 2}, '{"prompt":"p","n":2}'),
        (
            "outputs",
            [{"index": 0, "uri": "s3://b/o/0.png"}],
            '[{"index":0,"uri":"s3://b/o/0.png"}]',
        ),
        ("error", None, ""),
        ("polls", 3, "3"),
        ("n", 4, "4"),
        ("backlog_score", 1712345678901, "1712345678901"),
        ("watch_at", 1712345678.25, "1712345678.25"),
        ("create_sent_at", None, ""),
        ("cancel_requested", True, "1"),
        ("cancel_requested", False, "0"),
        ("settled", True, "1"),
        ("account", "main", "main"),
        ("spend_day", "20260101", "20260101"),
        ("reserved", 2, "2"),
        ("reconciled", "adopted", "adopted"),
        ("poll_plan", {"first_delay": 1.5}, '{"first_delay":1.5}'),
        ("event", '{"type":"job.succeeded"}', '{"type":"job.succeeded"}'),
        ("t_submitted", 1000.5, "1000.5"),
    ],
)
def test_each_field_is_written_as_its_type_says(name: str, value: Any, text: str) -> None:
    assert encode_fields({name: value}) == [name, text]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("request", {"prompt": "p", "images": ["s3://b/a.png"]}),
        ("priority", "batch"),
        ("n", 3),
        ("backlog_score", 1712345678901),
        ("account", "second"),
        ("spend_day", "20260101"),
        ("reserved", 3),
        ("settled", True),
        ("provider_task_id", "t-1"),
        ("provider_results", [{"url": "https://x/0.png"}]),
        ("provider_times", {"end_time": "2026-01-01 10:00:00.000", "utc_offset": 8}),
        ("outputs", [{"index": 0, "error": {"code": "X", "message": "m"}}]),
        ("usage", {"image_count": 1, "cost": 0.2, "currency": "CNY"}),
        ("metadata", {"order": "A-1"}),
        ("polls", 7),
        ("last_error", {"code": "Throttling", "message": "slow down"}),
        ("cancel_requested", True),
        ("poll_plan", {"first_delay": 1.5, "interval": 2.0}),
        ("watch_at", 1712345678.125),
        ("create_sent_at", 1712345600.5),
        ("reconciled", "recreated"),
        ("finish_since", 1712345699.0),
        ("callbacks", {"webhook_url": "https://h/"}),
        ("webhook_attempts", [{"status_code": 500}]),
        ("on_complete_status", "sent"),
    ],
)
def test_each_field_reads_back_as_written(name: str, value: Any) -> None:
    data = hash_of({"id": "j1", "status": Status.QUEUED, name: value})
    assert getattr(Job.from_hash(data), name) == value


def test_status_times_are_one_family() -> None:
    data = hash_of({"id": "j1", "status": Status.RUNNING, "t_queued": 1.5, "t_running": 4.0})
    assert Job.from_hash(data).timestamps == {"queued": 1.5, "running": 4.0}


def test_a_record_reads_back_whole() -> None:
    written = job(
        Status.RUNNING,
        request={"prompt": "p"},
        output_uri="s3://b/o/",
        timestamps={"queued": 1.0, "submitted": 2.0},
        account="main",
        provider_task_id="t",
        provider_status="RUNNING",
        polls=2,
        cancel_requested=True,
    )
    values = {f.name: getattr(written, f.name) for f in fields(Job) if f.name != "timestamps"}
    values |= {f"t_{name}": at for name, at in written.timestamps.items()}
    assert Job.from_hash(hash_of(values)) == written


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("request", {}),
        ("outputs", []),
        ("webhook_attempts", []),
        ("priority", "interactive"),
        ("n", 1),
        ("polls", 0),
        ("settled", False),
        ("account", None),
        ("create_sent_at", None),
        ("provider_task_id", None),
    ],
)
def test_empty_or_absent_fields_read_as_their_default(name: str, default: Any) -> None:
    base = {"id": "j1", "status": "queued"}
    assert getattr(Job.from_hash({**base, name: ""}), name) == default
    assert getattr(Job.from_hash(base), name) == default


def test_fields_of_an_older_record_are_ignored() -> None:
    assert Job.from_hash({"id": "j1", "status": "queued", "gone": "x"}).id == "j1"


def test_a_field_that_is_not_declared_is_refused() -> None:
    with pytest.raises(ValueError, match="not a field of the job record"):
        encode_fields({"colour": "blue"})


@pytest.mark.parametrize(
    ("record", "phase"),
    [
        (job(Status.QUEUED), Phase.QUEUED),
        (job(Status.QUEUED, account="main"), Phase.ADMITTED),
        (job(Status.QUEUED, account="main", create_sent_at=5.0), Phase.CREATING),
        # A reclaimed slot drops the account, not a create that went out.
        (job(Status.QUEUED, create_sent_at=5.0), Phase.CREATING),
        (job(Status.SUBMITTED, provider_task_id="t", provider_status="PENDING"), Phase.SUBMITTED),
        (job(Status.SUBMITTED, provider_task_id="t", provider_status="RUNNING"), Phase.SUBMITTED),
        (job(Status.RUNNING, provider_task_id="t", provider_status="RUNNING"), Phase.RUNNING),
        (job(Status.RUNNING, provider_task_id="t", provider_status="SUCCEEDED"), Phase.FINISHING),
        (job(Status.SUCCEEDED, provider_status="SUCCEEDED"), Phase.TERMINAL),
        (job(Status.FAILED, create_sent_at=5.0), Phase.TERMINAL),
        (job(Status.CANCELED, account="main"), Phase.TERMINAL),
    ],
)
def test_phase(record: Job, phase: Phase) -> None:
    assert record.phase is phase
