"""Token buckets for the per-account request rates.

A bucket holds at most one second's worth of tokens, so a burst beyond the rate within a second is
refused even when the average stays under it: that is how the provider's limits feel to a client
("bursts trip even under the limit"). Time is passed in, so tests need no clock and no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """Refills ``rate`` tokens a second up to ``capacity``; each request takes one."""

    rate: float
    capacity: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.tokens = self.capacity

    @classmethod
    def per_second(cls, rate: float) -> TokenBucket:
        """A bucket for ``rate`` requests a second with one second of burst."""
        return cls(rate=rate, capacity=max(1.0, rate))

    def take(self, now: float) -> bool:
        """Take one token at time ``now``; False when the request must be refused."""
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
