"""The events mode's safety-net looks: tables."""

from __future__ import annotations

import pytest

from wanedit.workers.policy.events import events_plan, first_look, missed_event, typical_slow
from wanedit.workers.policy.schedule import MIN_SAMPLES

TEN = [float(x) for x in range(1, 11)]  # 1..10 s: p95 is 9.55 s


@pytest.mark.parametrize(
    ("durations", "expected", "slow"),
    [
        ([], 60.0, 60.0),  # no history: the expected duration
        ([5.0] * (MIN_SAMPLES - 1), 60.0, 60.0),  # too little history
        ([5.0] * MIN_SAMPLES, 60.0, 5.0),  # enough: their p95
        (TEN, 60.0, 9.55),
        (list(reversed(TEN)), 60.0, 9.55),  # newest first, as Redis keeps them
    ],
)
def test_the_typical_slow_task_is_the_recent_p95(durations, expected, slow):
    assert typical_slow(durations, expected=expected) == pytest.approx(slow)


@pytest.mark.parametrize(
    ("durations", "factor", "expected", "longest", "first"),
    [
        ([], 1.5, 60.0, 270.0, 90.0),
        ([], 1.5, 30.0, 270.0, 45.0),
        (TEN, 1.5, 60.0, 270.0, 14.325),
        (TEN, 2.0, 60.0, 270.0, 19.1),
        ([], 1.5, 600.0, 270.0, 270.0),  # never later than the slot's lease allows
    ],
)
def test_the_first_look_waits_factor_times_the_p95(durations, factor, expected, longest, first):
    got = first_look(durations, factor=factor, expected=expected, longest=longest)
    assert got == pytest.approx(first)


@pytest.mark.parametrize(
    ("durations", "interval", "longest", "first", "then"),
    [
        ([], 30.0, 270.0, 90.0, 30.0),
        (TEN, 30.0, 270.0, 14.325, 30.0),
        (TEN, 5.0, 270.0, 14.325, 5.0),
        ([], 400.0, 270.0, 90.0, 270.0),  # the lease bounds every look
    ],
)
def test_after_the_first_look_the_task_is_looked_at_every_interval(
    durations, interval, longest, first, then
):
    plan = events_plan(durations, factor=1.5, expected=60.0, interval=interval, longest=longest)
    assert plan.polls.delay(0) == pytest.approx(first)
    assert [plan.polls.delay(n) for n in (1, 2, 10)] == [then, then, then]
    # No hazard-timed list looks in this mode: the plan carries no durations for them.
    assert plan.durations == ()


@pytest.mark.parametrize(
    ("seen", "ended_at", "now", "expected"),
    [
        (False, 100.0, 110.0, True),  # found ended 10 s after its end, no event: lost
        (True, 100.0, 110.0, False),  # its event came
        (False, 100.0, 101.0, False),  # the event may still be on its way
        (False, 100.0, 102.0, True),  # at the grace exactly
        (False, None, 110.0, False),  # no end time: tells nothing
    ],
)
def test_a_task_found_ended_without_its_event_counts_as_a_missed_event(
    seen: bool, ended_at: float | None, now: float, expected: bool
) -> None:
    assert missed_event(seen=seen, ended_at=ended_at, now=now, grace=2.0) is expected
