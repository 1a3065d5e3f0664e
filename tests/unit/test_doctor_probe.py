"""What the concurrency probe's tasks say about the provider's queue: tables."""

from __future__ import annotations

from wanedit.doctor.probe import ProbeTask, analyse, running_at_most, slot_waits, summary


def task(index, started, ended, first="RUNNING", status="SUCCEEDED", refused=None):
    return ProbeTask(
        index,
        sent_at=index * 0.2,
        task_id=None if refused else f"t{index}",
        refused=refused,
        first_status=None if refused else first,
        status=None if refused else status,
        started=started,
        ended=ended,
    )


# C=2: tasks 0 and 1 run at once; 2 and 3 wait PENDING and take the slots as they free.
FIFO = [
    task(0, 0.0, 10.0),
    task(1, 0.2, 12.0),
    task(2, 10.3, 20.0, first="PENDING"),
    task(3, 12.0, 22.0, first="PENDING"),
]


def test_queued_tasks_that_start_in_send_order_after_a_slot_frees():
    findings = analyse(FIFO, 2)
    assert findings["extra_tasks"] == "accepted and left PENDING until a slot freed"
    assert (findings["fifo"], findings["queued_start_order"]) == (True, [2, 3])
    assert [w["wait"] for w in findings["slot_waits"]] == [0.3, 0.0]
    assert (findings["slot_wait_max"], findings["max_running"]) == (0.3, 2)
    assert "first in, first out ([2, 3])" in summary(findings)


def test_queued_tasks_that_start_out_of_order():
    swapped = [*FIFO[:2], task(2, 12.0, 22.0, "PENDING"), task(3, 10.3, 20.0, "PENDING")]
    findings = analyse(swapped, 2)
    assert (findings["fifo"], findings["queued_start_order"]) == (False, [3, 2])
    assert "not in send order ([3, 2])" in summary(findings)


def test_extra_tasks_refused():
    refused = [*FIFO[:2], task(2, None, None, refused="Throttling.RateQuota")]
    findings = analyse(refused, 2)
    assert findings["extra_tasks"] == "refused: Throttling.RateQuota"
    assert findings["refused"] == [{"index": 2, "code": "Throttling.RateQuota"}]


def test_more_running_than_the_configured_concurrency():
    at_once = [task(i, i * 0.2, 10.0) for i in range(4)]
    findings = analyse(at_once, 2)
    assert findings["extra_tasks"] == "started at once: 4 ran together, more than 2"
    assert running_at_most(at_once) == 4


def test_a_queued_task_that_started_before_any_of_ours_ended_has_no_wait():
    # Another task of the account ended: no end of ours freed that slot.
    waits = slot_waits([task(0, 0.0, 10.0), task(1, 5.0, 15.0, "PENDING")], 1)
    assert waits == [{"index": 1, "slot_freed_at": None, "wait": None}]


def test_an_end_and_a_start_at_the_same_millisecond_never_count_as_two_running():
    assert running_at_most([task(0, 0.0, 10.0), task(1, 10.0, 20.0)]) == 1
