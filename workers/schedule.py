"""When to poll next and how long to back off. Pure: time and randomness are passed in."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


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
