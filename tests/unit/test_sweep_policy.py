"""What the sweeper does with an overdue job: tables."""

from __future__ import annotations

import pytest

from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers.policy.sweep import Redrive, losses, redrive_step

MAX_LOSSES = 3
SENT = 100.0  # when the sweeper last sent a step again


def job(status: Status, **fields: object) -> Job:
    return Job(id="j1", status=status, request={}, output_uri="s3://b/o/", **fields)  # type: ignore[arg-type]


def polling(**fields: object) -> Job:
    return job(Status.RUNNING, provider_task_id="t", provider_status="RUNNING", **fields)


def creating(**fields: object) -> Job:
    return job(Status.QUEUED, create_sent_at=5.0, account="a1", **fields)


def finishing(**fields: object) -> Job:
    return job(Status.RUNNING, provider_task_id="t", provider_status="SUCCEEDED", **fields)


@pytest.mark.parametrize(
    ("record", "step"),
    [
        (job(Status.QUEUED), Redrive.FORGET),
        (job(Status.QUEUED, account="a1"), Redrive.FORGET),
        (creating(), Redrive.RECONCILE),
        (job(Status.SUBMITTED, provider_task_id="t"), Redrive.POLL),
        (polling(), Redrive.POLL),
        (finishing(), Redrive.FINISH),
        (job(Status.SUCCEEDED), Redrive.FORGET),
        (job(Status.FAILED, create_sent_at=5.0), Redrive.FORGET),
        (job(Status.CANCELED, losses=9, redrive_at=SENT), Redrive.FORGET),
        # The step it sent last never ran, with nothing waiting in the queue: one more loss.
        (creating(losses=2, redrive_at=SENT), Redrive.GIVE_UP),
        (finishing(losses=2, redrive_at=SENT, stepped_at=SENT - 1), Redrive.GIVE_UP),
        (creating(losses=1, redrive_at=SENT), Redrive.RECONCILE),
        # It ran since: the job is moving, whatever was counted before.
        (creating(losses=2, redrive_at=SENT, stepped_at=SENT + 1), Redrive.RECONCILE),
        (finishing(losses=9, redrive_at=SENT, stepped_at=SENT), Redrive.FINISH),
        # A job whose provider task may be alive keeps being polled.
        (polling(losses=9, redrive_at=SENT), Redrive.POLL),
        (job(Status.SUBMITTED, provider_task_id="t", losses=9, redrive_at=SENT), Redrive.POLL),
        # A total of re-drives is no loss: only a re-drive of its own that never ran is.
        (creating(redrives=50), Redrive.RECONCILE),
        (polling(redrives=50), Redrive.POLL),
    ],
)
def test_redrive_step_with_nothing_waiting_in_the_queue(record: Job, step: Redrive) -> None:
    assert redrive_step(record, MAX_LOSSES, backed_up=False) is step


@pytest.mark.parametrize(
    ("record", "step"),
    [
        # The step it sent last may still wait its turn: the sweeper waits too, counting nothing.
        (creating(losses=2, redrive_at=SENT), Redrive.WAIT),
        (polling(losses=9, redrive_at=SENT), Redrive.WAIT),
        (finishing(losses=2, redrive_at=SENT, stepped_at=SENT - 1), Redrive.WAIT),
        # Its own chain's message is late, and none was sent again yet: send one.
        (polling(), Redrive.POLL),
        (creating(losses=2), Redrive.RECONCILE),
        # It ran since: send again.
        (polling(losses=2, redrive_at=SENT, stepped_at=SENT + 5), Redrive.POLL),
        (job(Status.QUEUED), Redrive.FORGET),
        (job(Status.SUCCEEDED, redrive_at=SENT), Redrive.FORGET),
    ],
)
def test_redrive_step_in_a_backed_up_queue(record: Job, step: Redrive) -> None:
    assert redrive_step(record, MAX_LOSSES, backed_up=True) is step


@pytest.mark.parametrize(
    ("record", "backed_up", "count"),
    [
        (polling(), False, 0),
        (polling(losses=2), False, 2),  # nothing sent again since: nothing to judge
        (polling(losses=2, redrive_at=SENT), False, 3),  # its own message never ran
        (polling(losses=2, redrive_at=SENT), True, 2),  # it may still be waiting its turn
        (polling(losses=2, redrive_at=SENT, stepped_at=SENT), False, 0),  # it ran: progress
        (polling(losses=2, redrive_at=SENT, stepped_at=SENT + 9), True, 0),
        (polling(losses=2, redrive_at=SENT, stepped_at=SENT - 9), False, 3),
    ],
)
def test_a_loss_is_counted_only_when_the_sweepers_own_message_never_ran(
    record: Job, backed_up: bool, count: int
) -> None:
    assert losses(record, backed_up=backed_up) == count


def test_a_backed_up_queue_never_fails_a_polled_job_however_many_sweeps() -> None:
    record = polling()
    for _ in range(10 * MAX_LOSSES):
        step = redrive_step(record, MAX_LOSSES, backed_up=True)
        assert step in (Redrive.POLL, Redrive.WAIT)
        if step is Redrive.POLL:
            record.losses = losses(record, backed_up=True)
            record.redrive_at = SENT
    assert record.losses == 0


@pytest.mark.parametrize(
    ("step", "sends"),
    [
        (Redrive.FORGET, False),
        (Redrive.WAIT, False),
        (Redrive.GIVE_UP, False),
        (Redrive.POLL, True),
        (Redrive.FINISH, True),
        (Redrive.RECONCILE, True),
    ],
)
def test_which_answers_send_a_step(step, sends):
    assert step.sends is sends
