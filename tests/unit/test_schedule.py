"""Poll schedule, backoff and the poll decision, as tables with a fixed clock."""

from __future__ import annotations

import pytest

from wanedit.jobs import Job
from wanedit.states import Status
from workers.provider import ResultItem, TaskState
from workers.schedule import PollPolicy, backoff
from workers.steps import Canceled, Fail, Finish, PollAgain, deadline_of, next_step

POLICY = PollPolicy(first_delay=10, interval=5, max_interval=15)


@pytest.mark.parametrize(
    ("polls_done", "delay"), [(0, 10), (1, 5), (2, 7.5), (3, 11.25), (4, 15), (40, 15)]
)
def test_poll_delays_grow_to_the_cap(polls_done, delay):
    assert POLICY.delay(polls_done) == pytest.approx(delay)


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(0, 0.0, 1.0), (0, 1.0, 2.0), (1, 0.5, 3.0), (3, 0.0, 8.0), (10, 1.0, 60.0), (10, 0.0, 30.0)],
)
def test_backoff_has_equal_jitter_and_a_cap(attempt, rand, expected):
    assert backoff(attempt, base=2, cap=60, rand=lambda: rand) == pytest.approx(expected)


def job(status=Status.SUBMITTED, polls=0, submitted=1000.0) -> Job:
    return Job(
        id="j1",
        status=status,
        request={},
        output_uri="s3://b/p/",
        timestamps={"queued": 990.0, "submitted": submitted},
        provider_task_id="t1",
        polls=polls,
    )


def task(status, **kw) -> TaskState:
    return TaskState(task_id="t1", status=status, **kw)


DEADLINE = deadline_of(job(), 3600)


@pytest.mark.parametrize(
    ("state", "now", "polls", "step"),
    [
        (task("PENDING"), 1010, 0, PollAgain(delay=5, mark_running=False)),
        (task("RUNNING"), 1010, 0, PollAgain(delay=5, mark_running=True)),
        (task("RUNNING"), 1040, 2, PollAgain(delay=11.25, mark_running=True)),
        (task("RUNNING"), 4598, 5, PollAgain(delay=2, mark_running=True)),
        (
            task("RUNNING"),
            4600,
            5,
            Fail(
                "PollDeadlineExceeded", "the provider task was still RUNNING at the poll deadline"
            ),
        ),
        (task("SUCCEEDED", results=[ResultItem(url="http://x")]), 1050, 3, Finish()),
        (
            task("FAILED", code="InternalError.Algo", message="boom"),
            1050,
            3,
            Fail("InternalError.Algo", "boom"),
        ),
        (task("FAILED"), 1050, 3, Fail("Unknown", "the provider reported FAILED")),
        (task("CANCELED"), 1050, 3, Canceled()),
        (
            task("UNKNOWN"),
            1050,
            3,
            Fail(
                "TaskUnknown",
                "the provider does not know this task: its id is wrong or its 24 h window "
                "has passed",
            ),
        ),
    ],
)
def test_next_step(state, now, polls, step):
    assert next_step(job(polls=polls), state, now, POLICY, DEADLINE) == step


def test_deadline_counts_from_submission():
    assert deadline_of(job(submitted=5000.0), 60) == 5060.0
