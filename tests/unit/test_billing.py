"""What the provider bills for a job that ends: one rule, as a table."""

from __future__ import annotations

import pytest

from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers.policy.billing import billed, billed_so_far


@pytest.mark.parametrize(
    ("status", "image_count", "sent", "expected"),
    [
        (None, None, False, 0),  # never sent (or the list showed it made nothing)
        (None, None, True, None),  # sent, answer lost: not known yet
        ("PENDING", None, True, None),
        ("RUNNING", None, True, None),
        ("UNKNOWN", None, True, None),  # its window passed: it may have billed
        ("FAILED", None, True, 0),
        ("CANCELED", None, True, 0),
        ("SUCCEEDED", 2, True, 2),
        ("SUCCEEDED", None, True, None),  # no usage reported: not known
    ],
)
def test_billed(status, image_count, sent, expected):
    assert billed(status, image_count, sent=sent) == expected


def job(status: Status, **fields: object) -> Job:
    return Job(id="j1", status=status, request={}, output_uri="s3://b/o/", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (job(Status.QUEUED), 0),
        (job(Status.QUEUED, create_sent_at=5.0), None),
        (job(Status.SUBMITTED, provider_task_id="t", provider_status="PENDING"), None),
        (job(Status.RUNNING, provider_task_id="t", provider_status="RUNNING"), None),
        (
            job(
                Status.RUNNING,
                provider_task_id="t",
                provider_status="SUCCEEDED",
                usage={"image_count": 3},
            ),
            3,
        ),
        (job(Status.FAILED, provider_task_id="t", provider_status="FAILED"), 0),
    ],
)
def test_billed_so_far_reads_the_record(record, expected):
    assert billed_so_far(record) == expected
