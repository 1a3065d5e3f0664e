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


# An event may still be on its way this long after its task's end: an end seen sooner by a look
# is no evidence that the event was lost.
MISS_GRACE = 2.0


def missed_event(
    *, seen: bool, ended_at: float | None, now: float, grace: float = MISS_GRACE
) -> bool:
    """Whether a task that a look found ended counts as one whose event was lost: no event
    named it, and it ended at least `grace` ago (an end time that cannot be read tells nothing)."""
    if seen or ended_at is None:
        return False
    return now - ended_at >= grace
