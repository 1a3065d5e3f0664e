"""When to poll next and when the list watch looks. Pure: durations and times are passed in."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
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


def look_delay(
    ages: Sequence[float],
    durations: Sequence[float],
    *,
    budget: float,
    interval: float,
    min_delay: float,
    max_delay: float,
    steps: int = 64,
) -> float:
    """Seconds until the next look at tasks in flight of these `ages` (seconds since created).

    A task that ends unseen holds its slot idle until we look. The expected slot-seconds lost
    that way grows with each task's chance of having ended since now, which recent `durations`
    (sorted) tell: nothing while a task is younger than the fastest recent one, fast as it nears
    the slowest. The look comes when that expectation reaches `budget`, so looks bunch where
    ends are likely and thin out where they are not. A task older than every recent one is
    taken to end at an even rate over `interval`. Bounded by `min_delay` and `max_delay`.
    """
    if not ages:
        return max_delay
    if not durations:
        return min(max(interval, min_delay), max_delay)
    count = len(durations)

    def ended_by(age: float) -> float:
        return bisect_right(durations, age) / count

    alive = [(age, 1.0 - ended_by(age)) for age in ages]
    step = max_delay / steps
    lost = 0.0
    waited = 0.0
    while waited < max_delay:
        waited += step
        chance = 0.0
        for age, left in alive:
            if left <= 0.0:
                chance += min(1.0, waited / interval)
            else:
                chance += (ended_by(age + waited) - (1.0 - left)) / left
        lost += step * chance
        if lost >= budget:
            break
    return min(max(waited, min_delay), max_delay)


def look_budget(concurrency: int, interval: float, mean: float) -> float:
    """The lost slot-seconds a look is worth: what looking every `interval` costs on average
    when `concurrency` tasks of `mean` duration end at an even rate (rate x interval^2 / 2)."""
    return concurrency * interval**2 / (2.0 * mean) if mean > 0 else 0.0


@dataclass(frozen=True)
class Plan:
    """How one task is watched: when the account's list watch starts looking for it
    (`watch_after`), how often the list is read (`watch_interval`, or by the hazard of the tasks
    in flight once durations are known), and the task's own poll schedule, which in list mode
    is only a slow fallback."""

    watch_after: float
    watch_interval: float
    polls: PollPolicy
    durations: tuple[float, ...] = ()
    budget: float = 0.0
    min_interval: float = 0.0

    def next_look(self, ages: Sequence[float]) -> float:
        """Seconds until the account's next list look, for tasks in flight of these ages."""
        if not self.durations or self.budget <= 0:
            return self.watch_interval
        return look_delay(
            ages,
            self.durations,
            budget=self.budget,
            interval=self.watch_interval,
            min_delay=self.min_interval,
            max_delay=LOOK_STRETCH * self.watch_interval,
        )


# Hazard-timed looks never wait longer than the even interval (which bounds the lag).
LOOK_STRETCH = 1.0


def plan_for(
    durations: Sequence[float],
    *,
    default: PollPolicy,
    min_interval: float,
    max_interval: float,
    lag_fraction: float,
    max_first_delay: float,
    list_mode: bool,
    concurrency: int = 1,
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
    ordered = tuple(sorted(durations))
    slowest = quantile(ordered, 0.95) if len(ordered) >= MIN_SAMPLES else 0.0
    fallback = PollPolicy(
        first_delay=min(max(2 * slowest, 2 * fitted.first_delay), max_first_delay),
        interval=max_interval,
        max_interval=max_interval,
        growth=1.0,
    )
    if len(ordered) < MIN_SAMPLES:
        return Plan(fitted.first_delay, fitted.interval, fallback)
    mean = math.fsum(ordered) / len(ordered)
    return Plan(
        fitted.first_delay,
        fitted.interval,
        fallback,
        durations=ordered,
        budget=look_budget(concurrency, fitted.interval, mean),
        min_interval=min_interval,
    )
