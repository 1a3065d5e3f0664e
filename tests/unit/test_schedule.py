"""Poll schedule and the poll decision, as tables with a fixed clock."""

from __future__ import annotations

import pytest

from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers.policy.poll import Canceled, Fail, Finish, PollAgain, deadline_of, next_step
from wanedit.workers.policy.schedule import (
    LOOK_STRETCH,
    PollPolicy,
    adaptive_policy,
    look_budget,
    look_delay,
    plan_for,
    quantile,
)
from wanedit.workers.provider import ResultItem, TaskState, task_seconds

POLICY = PollPolicy(first_delay=10, interval=5, max_interval=15)


@pytest.mark.parametrize(
    ("polls_done", "delay"), [(0, 10), (1, 5), (2, 7.5), (3, 11.25), (4, 15), (40, 15)]
)
def test_poll_delays_grow_to_the_cap(polls_done, delay):
    assert POLICY.delay(polls_done) == pytest.approx(delay)


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


DEADLINE = deadline_of(job(), 3600, now=1000.0)


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
    assert deadline_of(job(submitted=5000.0), 60, now=9000.0) == 5060.0


def queued(**fields: object) -> Job:
    stamps = {"queued": 0.0}
    return Job(id="j1", status=Status.QUEUED, timestamps=stamps, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "now", "deadline"),
    [
        # Waiting a day in the backlog spends nothing: the first create starts the clock.
        (queued(), 86_400.0, 86_460.0),
        (queued(first_create_at=80_000.0), 86_400.0, 80_060.0),
        (queued(first_create_at=86_390.0, account="a1"), 86_400.0, 86_450.0),
    ],
)
def test_a_long_backlog_never_counts_against_the_deadline(record, now, deadline):
    assert deadline_of(record, 60, now=now) == deadline


DEFAULT = PollPolicy(first_delay=10, interval=5, max_interval=15)


def fitted(durations):
    return adaptive_policy(
        durations,
        default=DEFAULT,
        min_interval=1.0,
        max_interval=15.0,
        lag_fraction=0.1,
        max_first_delay=60.0,
    )


@pytest.mark.parametrize(
    ("durations", "first", "interval"),
    [
        ([], 10, 5),  # no history: the default schedule
        ([40.0] * 4, 10, 5),  # too little history
        ([30.0, 60.0, 90.0, 120.0, 75.0], 36.0, 7.5),  # real-provider-like: p05 and 10% of mean
        ([2.0, 3.0, 4.0, 5.0, 6.0], 2.2, 1.0),  # the interval is bounded below
        ([200.0] * 10, 60.0, 15.0),  # bounded above
    ],
)
def test_adaptive_policy(durations, first, interval):
    policy = fitted(durations)
    assert policy.first_delay == pytest.approx(first)
    assert policy.delay(1) == pytest.approx(interval)
    if len(durations) >= 5:
        assert policy.delay(7) == pytest.approx(interval)  # fitted schedules do not grow


def test_quantile():
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert quantile([1.0, 2.0], 0.05) == pytest.approx(1.05)
    assert quantile([7.0], 0.9) == 7.0


@pytest.mark.parametrize(
    ("times", "seconds"),
    [
        (
            {"scheduled_time": "2025-10-23 16:18:16.040", "end_time": "2025-10-23 16:19:09.591"},
            53.551,
        ),
        ({"end_time": "2025-10-23 16:19:09.591"}, None),
        ({"scheduled_time": "garbage", "end_time": "2025-10-23 16:19:09.591"}, None),
        (
            {"scheduled_time": "2025-10-23 16:19:09.591", "end_time": "2025-10-23 16:18:16.040"},
            None,
        ),
    ],
)
def test_task_seconds(times, seconds):
    result = task_seconds(times)
    assert result == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("durations", "list_mode", "watch_after", "watch_interval", "fallback_first", "fallback_every"),
    [
        # Per-task polling: the fitted schedule is the task's own.
        ([30.0, 60.0, 90.0, 120.0, 75.0], False, 36.0, 7.5, 36.0, 7.5),
        # List mode: the watch uses the fitted schedule; the task's polls are a slow fallback
        # (twice the slow end of recent tasks, then the longest interval).
        ([30.0, 60.0, 90.0, 120.0, 75.0], True, 36.0, 7.5, 60.0, 15.0),
        ([2.0, 3.0, 4.0, 5.0, 6.0], True, 2.2, 1.0, 11.6, 15.0),
        ([], True, 10.0, 5.0, 20.0, 15.0),  # no history: the defaults
    ],
)
def test_plan_for(
    durations, list_mode, watch_after, watch_interval, fallback_first, fallback_every
):
    plan = plan_for(
        durations,
        default=DEFAULT,
        min_interval=1.0,
        max_interval=15.0,
        lag_fraction=0.1,
        max_first_delay=60.0,
        list_mode=list_mode,
    )
    assert plan.watch_after == pytest.approx(watch_after)
    assert plan.watch_interval == pytest.approx(watch_interval)
    assert plan.polls.first_delay == pytest.approx(fallback_first)
    assert plan.polls.delay(1) == pytest.approx(fallback_every)


UNIFORM_2_6 = tuple(2.0 + 4.0 * i / 99 for i in range(100))  # recent durations, 2 to 6 s


@pytest.mark.parametrize(
    ("ages", "expected"),
    [
        # Nothing in flight: no reason to look soon.
        ([], 0.45),
        # Every task younger than the fastest recent one by more than the longest wait: none
        # can end before then.
        ([0.0, 0.1, 1.0], 0.45),
        # One task near the slowest recent duration: it ends within 0.1 s for sure; the budget
        # (0.05625 slot-s) is spent at sqrt(2 x 0.1 x 0.05) = 0.1 s, plus 0.006 s.
        ([5.9], 0.106),
        # Five tasks older than average: their ends come at 2.19/s, sooner than the even
        # 1.25/s the interval assumes: sqrt(2 x 0.05625 / 2.19) = 0.227 s.
        ([2.5, 3.0, 3.5, 4.0, 4.5], 0.227),
        # Older than every recent task: taken to end at an even rate over the interval (0.3 s):
        # sqrt(2 x 0.3 x 0.05625) = 0.184 s.
        ([7.0], 0.184),
    ],
)
def test_look_delay(ages, expected):
    budget = look_budget(5, 0.3, 4.0)
    delay = look_delay(
        ages, UNIFORM_2_6, budget=budget, interval=0.3, min_delay=0.02, max_delay=0.45
    )
    assert delay == pytest.approx(expected, abs=0.008)  # one step of max_delay / 64


def test_look_delay_grows_as_tasks_get_younger():
    budget = look_budget(5, 0.3, 4.0)
    delays = [
        look_delay([age], UNIFORM_2_6, budget=budget, interval=0.3, min_delay=0.02, max_delay=0.45)
        for age in (5.5, 5.0, 4.0, 3.0, 2.0)
    ]
    assert delays == sorted(delays)
    assert delays[0] < delays[-1]


def test_look_budget():
    # Looking every 0.3 s at 5 tasks of 4 s: 1.25 ends/s, each waits 0.15 s on average.
    assert look_budget(5, 0.3, 4.0) == pytest.approx(1.25 * 0.3 * 0.15)
    assert look_budget(5, 0.3, 0.0) == 0.0


def test_plan_next_look_uses_history():
    def plan(durations):
        return plan_for(
            durations,
            default=DEFAULT,
            min_interval=0.05,
            max_interval=15.0,
            lag_fraction=0.075,
            max_first_delay=60.0,
            list_mode=True,
            concurrency=5,
        )

    fitted = plan(list(UNIFORM_2_6))
    assert fitted.watch_interval == pytest.approx(0.3)
    assert fitted.next_look([]) == pytest.approx(LOOK_STRETCH * 0.3)
    assert fitted.next_look([5.95]) < fitted.watch_interval
    no_history = plan([])
    assert no_history.next_look([5.95]) == no_history.watch_interval
