"""When to poll next and how long to back off. Pure: time and randomness are passed in."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PollPolicy:
    """First poll after `first_delay`; then `interval`, growing by `growth` up to `max_interval`."""

    first_delay: float
    interval: float
    max_interval: float
    growth: float = 1.5

    def delay(self, polls_done: int) -> float:
        if polls_done <= 0:
            return self.first_delay
        return min(self.max_interval, self.interval * self.growth ** (polls_done - 1))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


MIN_SAMPLES = 5


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, by linear interpolation."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def adaptive_policy(
    durations: Sequence[float],
    *,
    default: PollPolicy,
    min_interval: float,
    max_interval: float,
    lag_fraction: float,
    max_first_delay: float,
) -> PollPolicy:
    """Polls fitted to recently observed task durations.

    The first poll comes when the fastest 5% of recent tasks have ended; after that the interval
    is `lag_fraction` of the mean duration, so the time between the provider finishing and us
    noticing stays about that fraction of a task. Bounded by the settings; with too little
    history, the default schedule.
    """
    if len(durations) < MIN_SAMPLES:
        return default
    ordered = sorted(durations)
    mean = sum(ordered) / len(ordered)
    interval = min(max(lag_fraction * mean, min_interval), max_interval)
    first = min(max(quantile(ordered, 0.05), min_interval), max_first_delay)
    return PollPolicy(first_delay=first, interval=interval, max_interval=interval, growth=1.0)


def backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, never above `cap`."""
    ceiling = min(cap, base * 2 ** max(attempt, 0))
    return ceiling / 2 + ceiling / 2 * rand()


@dataclass(frozen=True)
class Plan:
    """How one task is watched: when the account's list watch starts looking for it
    (`watch_after`), how often the list is read (`watch_interval`), and the task's own poll
    schedule, which in list mode is only a slow fallback."""

    watch_after: float
    watch_interval: float
    polls: PollPolicy


def plan_for(
    durations: Sequence[float],
    *,
    default: PollPolicy,
    min_interval: float,
    max_interval: float,
    lag_fraction: float,
    max_first_delay: float,
    list_mode: bool,
) -> Plan:
    """The adaptive schedule; in list mode the task's own polls back the list watch up."""
    fitted = adaptive_policy(
        durations,
        default=default,
        min_interval=min_interval,
        max_interval=max_interval,
        lag_fraction=lag_fraction,
        max_first_delay=max_first_delay,
    )
    if not list_mode:
        return Plan(fitted.first_delay, fitted.interval, fitted)
    slowest = quantile(sorted(durations), 0.95) if len(durations) >= MIN_SAMPLES else 0.0
    fallback = PollPolicy(
        first_delay=min(max(2 * slowest, 2 * fitted.first_delay), max_first_delay),
        interval=max_interval,
        max_interval=max_interval,
        growth=1.0,
    )
    return Plan(fitted.first_delay, fitted.interval, fallback)
