"""When a task is looked at in the events mode, where the provider's task-end event is what
starts its result query. Pure.

Looking is only the safety net for an event that never came: the first look waits for
`factor` x the recent p95 task duration (`expected` while there are too few durations), then
the task is looked at every `interval`. A lost event delays its job; it never loses it.
"""

from __future__ import annotations

from collections.abc import Sequence

from wanedit.workers.policy.schedule import MIN_SAMPLES, Plan, PollPolicy, quantile


def typical_slow(durations: Sequence[float], *, expected: float) -> float:
    """The recent p95 task duration; `expected` while fewer than MIN_SAMPLES are known."""
    if len(durations) < MIN_SAMPLES:
        return expected
    return quantile(sorted(durations), 0.95)


def first_look(
    durations: Sequence[float], *, factor: float, expected: float, longest: float
) -> float:
    """Seconds from a task's create to its first safety-net look, at most `longest` (the look
    renews the task's slot lease before it runs out)."""
    return min(factor * typical_slow(durations, expected=expected), longest)


def events_plan(
    durations: Sequence[float],
    *,
    factor: float,
    expected: float,
    interval: float,
    longest: float,
) -> Plan:
    """The plan of a task in the events mode: no list watch, its own polls as the safety net."""
    first = first_look(durations, factor=factor, expected=expected, longest=longest)
    every = min(interval, longest)
    polls = PollPolicy(first_delay=first, interval=every, max_interval=every, growth=1.0)
    return Plan(watch_after=first, watch_interval=every, polls=polls)
