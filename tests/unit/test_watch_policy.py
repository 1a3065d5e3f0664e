"""The list watch and the fallback polls: tables."""

from __future__ import annotations

import pytest

from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers.policy.watch import PollTurn, ages, ended, look_after_error, poll_turn

DEADLINE = 1000.0


@pytest.mark.parametrize(
    ("now", "seen_at", "every", "turn"),
    [
        (100.0, None, 30.0, PollTurn.QUERY),  # never seen by the watch: the poll looks
        (100.0, 90.0, 30.0, PollTurn.BOOK),  # seen 10 s ago: only book the next turn
        (100.0, 70.0, 30.0, PollTurn.QUERY),  # not seen for a whole interval: fall back
        (100.0, 71.0, 30.0, PollTurn.BOOK),
        (1000.0, 999.0, 30.0, PollTurn.QUERY),  # the deadline: the poll decides
    ],
)
def test_a_chained_poll_falls_back_when_the_watch_stops_seeing_its_task(now, seen_at, every, turn):
    assert poll_turn(now, DEADLINE, seen_at, every) is turn


def job(task_id: str, submitted: float = 0.0) -> Job:
    return Job(
        id=f"job-{task_id}",
        status=Status.SUBMITTED,
        request={},
        output_uri="s3://b/o/",
        provider_task_id=task_id,
        timestamps={"submitted": submitted},
    )


def test_ended_picks_the_due_jobs_whose_row_has_ended():
    due = [job("a"), job("b"), job("c"), job("d"), job("e")]
    statuses = {"a": "SUCCEEDED", "b": "RUNNING", "c": "FAILED", "d": "CANCELED", "x": "FAILED"}
    assert [j.provider_task_id for j in ended(due, statuses)] == ["a", "c", "d"]


def test_ages_count_from_the_create():
    assert ages([job("a", 90.0), job("b", 40.0)], 100.0) == [10.0, 60.0]


@pytest.mark.parametrize(
    ("refused", "watch_interval", "expected"),
    [(True, 2.0, 60.0), (False, 2.0, 3.0), (False, 5.0, 5.0)],
)
def test_the_watch_looks_again_after_an_error(refused, watch_interval, expected):
    delay = look_after_error(
        refused=refused, watch_interval=watch_interval, retry_base=3.0, poll_max_interval=60.0
    )
    assert delay == expected
