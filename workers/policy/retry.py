"""The one retry policy: exponential backoff with equal jitter, a retry budget and deadlines.

Every retry path of the workers uses it: a task's transient errors, a poll's own error counter,
a finish waiting for storage, an enqueue message, a webhook. Pure: randomness is passed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Retry `attempt` (0 for the first retry) waits about `base * 2**attempt` seconds, never
    above `cap`; at most `budget` retries unless a call says otherwise."""

    base: float
    cap: float
    budget: int

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Exponential backoff with equal jitter: half fixed, half random, never above `cap`."""
        ceiling = min(self.cap, self.base * 2 ** max(attempt, 0))
        return ceiling / 2 + ceiling / 2 * rand()

    def spent(self, attempts: int, limit: int | None = None) -> bool:
        """Whether `attempts` retries use up the budget (`limit`, when an error sets its own)."""
        return attempts >= (self.budget if limit is None else limit)

    def delay_before(
        self,
        attempt: int,
        *,
        now: float,
        deadline: float,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """The delay of retry `attempt`, or None when that retry would start after `deadline`."""
        delay = self.delay(attempt, rand)
        return None if now + delay > deadline else delay
