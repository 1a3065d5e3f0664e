"""What the sweeper does with an overdue job: a table."""

from __future__ import annotations

import pytest

from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers.policy.sweep import Redrive, redrive_step

MAX_LOSSES = 3


def job(status: Status, **fields: object) -> Job:
    return Job(id="j1", status=status, request={}, output_uri="s3://b/o/", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "step"),
    [
        (job(Status.QUEUED), Redrive.FORGET),
        (job(Status.QUEUED, create_sent_at=5.0), Redrive.RECONCILE),
        (job(Status.SUBMITTED, provider_task_id="t"), Redrive.POLL),
        (job(Status.RUNNING, provider_task_id="t", provider_status="RUNNING"), Redrive.POLL),
        (job(Status.RUNNING, provider_task_id="t", provider_status="SUCCEEDED"), Redrive.FINISH),
        (job(Status.SUCCEEDED), Redrive.FORGET),
        (job(Status.FAILED, create_sent_at=5.0), Redrive.FORGET),
        (job(Status.SUBMITTED, provider_task_id="t", redrives=2), Redrive.POLL),
        (job(Status.SUBMITTED, provider_task_id="t", redrives=3), Redrive.GIVE_UP),
        (job(Status.QUEUED, create_sent_at=5.0, redrives=3), Redrive.GIVE_UP),
        (job(Status.QUEUED, redrives=3), Redrive.FORGET),  # admission serves it
        (job(Status.CANCELED, redrives=9), Redrive.FORGET),
    ],
)
def test_redrive_step(record: Job, step: Redrive) -> None:
    assert redrive_step(record, MAX_LOSSES) is step


@pytest.mark.parametrize(
    ("step", "sends"),
    [
        (Redrive.FORGET, False),
        (Redrive.GIVE_UP, False),
        (Redrive.POLL, True),
        (Redrive.FINISH, True),
        (Redrive.RECONCILE, True),
    ],
)
def test_which_answers_send_a_step(step, sends):
    assert step.sends is sends
