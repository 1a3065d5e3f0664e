"""The benchmark's own arithmetic: the backlog-window utilization, the targets, --only."""

from __future__ import annotations

import dataclasses

import pytest

from bench.common import TaskSpan
from bench.designs import DESIGNS, pick
from bench.figures import Figures, busy_share, design_targets, event_targets, verdict


@pytest.mark.parametrize(
    ("spans", "slots", "busy", "capacity"),
    [
        # One slot busy from its create to the last create: full.
        ([TaskSpan(0, 0, 10), TaskSpan(10, 10, 20)], 1, 10.0, 10.0),
        # A gap of 1 s between the first task's end and the second's start.
        ([TaskSpan(0, 0, 9), TaskSpan(10, 10, 20)], 1, 9.0, 10.0),
        # Starting late after its create (PENDING at the provider) is idle slot time.
        ([TaskSpan(0, 2, 10), TaskSpan(10, 10, 20)], 1, 8.0, 10.0),
        # Two slots, the second one empty: half.
        ([TaskSpan(0, 0, 10), TaskSpan(10, 10, 20)], 2, 10.0, 20.0),
        # A task still running at the end counts up to the window's end.
        ([TaskSpan(0, 0, None), TaskSpan(4, None, None)], 1, 4.0, 4.0),
        # A canceled task that never started holds no slot.
        ([TaskSpan(0, None, 1), TaskSpan(5, 5, 9)], 1, 0.0, 5.0),
    ],
)
def test_busy_share_counts_running_time_between_the_first_and_last_create(
    spans: list[TaskSpan], slots: int, busy: float, capacity: float
) -> None:
    share = busy_share(spans, slots)
    assert share is not None
    assert (share.busy, share.capacity) == pytest.approx((busy, capacity))


def test_busy_share_of_nothing_or_one_instant_has_no_utilization() -> None:
    assert busy_share([], 5) is None
    share = busy_share([TaskSpan(3, 3, 9)], 5)
    assert share is not None and share.utilization is None


FIGURES = Figures(
    edits=210,
    succeeded=210,
    failed=0,
    unfinished=0,
    window=700.0,
    mean_task=16.0,
    capacity=5 / 16,
    throughput=0.3,
    utilization=0.96,
    interactive_p50=17.0,
    interactive_p95=21.0,
    interactive_p95_ratio=21 / 16,
    queries=240,
    polls_per_edit=240 / 210,
    lag_p50=0.2,
    lag_p95=0.4,
    throttled=0,
    throttling_failures=0,
    cpu_per_edit=0.05,
    peak_rss_mib=250.0,
    max_running={"a1": 5},
    busy_window=680.0,
    busy_utilization=0.985,
    interactive_task_p95=23.0,
)


@pytest.mark.parametrize(
    ("change", "name", "result"),
    [
        ({}, "utilization while the backlog waits", "PASS"),
        ({"busy_utilization": 0.975}, "utilization while the backlog waits", "MISS (0.005 below)"),
        ({"busy_utilization": None}, "utilization while the backlog waits", "n/a"),
        ({"polls_per_edit": 1.3}, "provider queries per edit", "PASS"),
        ({"polls_per_edit": 1.42}, "provider queries per edit", "MISS (0.12 over)"),
        ({"lag_p95": 1.25}, "completion lag p95", "MISS (0.25 s over)"),
        # 1.2 x 16 + 1 = 20.2 s
        ({}, "interactive latency p95", "MISS (0.80 s over)"),
        ({"interactive_p95": 20.2}, "interactive latency p95", "PASS"),
        ({"throttling_failures": 2}, "failures from throttling", "MISS (2 over)"),
    ],
)
def test_event_targets(change: dict[str, object], name: str, result: str) -> None:
    figures = dataclasses.replace(FIGURES, **change)  # type: ignore[arg-type]
    found = {t.name: t for t in event_targets(figures, lossy=False)}
    assert verdict(found[name]) == result


def test_the_latency_target_shows_the_task_durations_that_bound_it() -> None:
    found = {t.name: t for t in event_targets(FIGURES, lossy=False)}
    assert found["interactive latency p95"].beside.endswith("23.00 s")


@pytest.mark.parametrize(
    ("change", "name", "result"),
    [
        ({"busy_utilization": 0.951}, "utilization while the backlog waits", "PASS"),
        ({"busy_utilization": 0.94}, "utilization while the backlog waits", "MISS (0.010 below)"),
        ({"unfinished": 0}, "jobs lost (no completion event)", "PASS"),
        ({"unfinished": 3}, "jobs lost (no completion event)", "MISS (3 over)"),
    ],
)
def test_lossy_event_targets(change: dict[str, object], name: str, result: str) -> None:
    figures = dataclasses.replace(FIGURES, **change)  # type: ignore[arg-type]
    found = {t.name: t for t in event_targets(figures, lossy=True)}
    assert set(found) == {
        "jobs lost (no completion event)",
        "utilization while the backlog waits",
        "failures from throttling",
    }
    assert verdict(found[name]) == result


def test_each_design_gets_its_own_targets() -> None:
    names = {
        name: [t.name for t in design_targets(design, FIGURES)] for name, design in DESIGNS.items()
    }
    assert names["naive"] == []
    assert "polls per edit" in names["wanedit"]
    assert "provider queries per edit" in names["wanedit-events"]
    assert "jobs lost (no completion event)" in names["events-10pct-lost"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (None, ["wanedit-events", "wanedit", "naive", "events-10pct-lost"]),
        ("naive", ["naive"]),
        ("events-10pct-lost, wanedit-events", ["events-10pct-lost", "wanedit-events"]),
        ("wanedit,wanedit", ["wanedit"]),
    ],
)
def test_only_picks_designs_in_the_order_given(text: str | None, names: list[str]) -> None:
    assert [d.name for d in pick(text)] == names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wanedit,push", "--only: unknown design 'push'; the designs are wanedit-events, "),
        (",", "--only: name at least one design of wanedit-events, "),
    ],
)
def test_only_names_the_unknown_design_and_the_known_ones(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message):
        pick(text)


def test_a_task_is_missed_only_when_no_copy_of_its_event_arrived() -> None:
    from bench.common import EventSend, RunResult
    from bench.figures import missed_events

    run = RunResult(
        design="events-10pct-lost",
        accounts=1,
        edits=[],
        started_at=0.0,
        backlog_enqueued_at=0.0,
        finished_at=1.0,
        sandbox_stats={},
        account_names={},
        cpu_seconds=0.0,
        peak_rss=0,
        samples=[],
        depth_source="",
        event_sends=[
            EventSend("t1", "sent", 1.0, 1.1),
            EventSend("t2", "lost", 2.0, None),
            EventSend("t3", "failed", 3.0, None),
            # A duplicate's first copy was given up on, its second arrived.
            EventSend("t4", "failed", 4.0, None),
            EventSend("t4", "sent", 4.0, 4.2, duplicate=True),
        ],
    )
    assert missed_events(run) == {"t2", "t3"}


def test_the_report_explains_a_miss_with_the_runs_own_figures() -> None:
    from bench.report import why

    figures = dataclasses.replace(
        FIGURES,
        busy_utilization=0.9,
        idle_slot_seconds=340.0,
        missed_events=20,
        lag_missed_mean=12.5,
        event_send_p95=0.07,
        interactive_wait_p95=4.5,
    )
    reasons = why(figures, {"interactive latency p95", "utilization while the backlog waits"})
    assert "own task durations have a p95 of 23.00 s" in reasons[0]
    assert "does not preempt; p95 4.50 s" in reasons[0]
    assert "340.0 idle slot-seconds" in reasons[1]
    assert "the 20 tasks whose event never arrived" in reasons[1]
    assert "about 250.0 slot-seconds" in reasons[1]
    assert why(figures, set()) == []
