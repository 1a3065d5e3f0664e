"""Global admission control in Redis: our backlog, provider slots, rates and the daily cap.

The backlog stays with us: jobs wait in two sorted sets (interactive, batch) ordered by arrival,
and a job is sent to the provider only when an account has a free slot, so the provider's own
FIFO queue stays empty and the order is ours. Every decision is one Lua script, atomic across
every worker process and machine sharing the Redis.

- Slots: per account a sorted set of job ids scored by lease expiry. A slot is taken at
  admission, renewed by each poll, and given back at a terminal state; a slot whose lease ran
  out (its worker crashed, or its message waited too long) is reclaimed, and a job that never
  reached the provider goes back to the backlog with its reservation given back. Each admission
  has a token that its submit message carries: a message from an earlier admission is refused.
- Rates: generic cell rate algorithm (GCRA) with no burst: submissions at least 1/R s apart and
  status queries at least 1/Q s apart (plus 5% of headroom, after a burst of two) per account,
  scheduled ahead rather than refused. A 429 from
  the provider doubles the spacing (up to 8x) until it has been quiet for 30 s.
- Priority: the interactive head goes first; a batch head that has waited `batch_max_wait`
  seconds goes before it (so batch work never starves).
- Daily cap: images reserved at admission (n), corrected to what was billed at the end; when the
  next job would pass the cap, admission pauses and says why.

The scripts (lua/admit.lua and its neighbours) read job records by the job-key prefix, so this
needs a single Redis (not Redis Cluster).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from wanedit.accounts import Account
from wanedit.store.accounts import AccountPauses
from wanedit.store.keys import Keys
from wanedit.store.scripts import AccountTerms, Scripts

PENALTY_MAX = 8
PENALTY_TTL_MS = 30_000
HORIZON_MS = 1_000  # admit at most this far ahead of an account's next submission time
QUERY_BURST = 2  # queries that may go back to back; submissions never burst
# Queries are spaced this much wider than 1/Q. The provider's bucket counts arrivals, which
# jitter against our schedule by a few milliseconds: after a burst, a query on its exact turn
# that arrives a little early would find no token and be throttled (429). 5% of headroom gives
# each query a growing margin, at the cost of 5% of the query rate.
QUERY_HEADROOM = 0.05
PRIORITIES = ("interactive", "batch")


@dataclass(frozen=True)
class Admitted:
    job_id: str
    account: str
    delay: float  # seconds until its submission slot on the account's rate
    token: int  # this admission's: its submit message carries it, so a stale one cannot pass


@dataclass(frozen=True)
class AdmitResult:
    admitted: list[Admitted]
    blocked_by: str  # "" (backlog empty or max reached), "slots", "rate", "cap" or "paused"
    waiting: int
    reclaimed: int


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")


class Admission:
    """The Redis side of admission control, shared by producers and workers."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str,
        accounts: Sequence[Account],
        lease_seconds: float,
        batch_max_wait: float,
        daily_image_cap: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.redis = client
        self.keys = Keys(key_prefix)
        self.accounts = list(accounts)
        self.lease_ms = int(lease_seconds * 1000)
        self.batch_max_wait_ms = int(batch_max_wait * 1000)
        self.default_cap = daily_image_cap
        # None: Redis's clock decides (production); a callable: tests control time.
        self.test_clock = clock
        self.clock = clock or time.time
        self.scripts = Scripts(client, self.keys)
        self.pauses = AccountPauses(client, self.keys)

    def _now_ms(self) -> int | None:
        return None if self.test_clock is None else int(self.test_clock() * 1000)

    def admit(self, max_admits: int = 50) -> AdmitResult:
        """Take slots for as many waiting jobs as slots, rates and the cap allow, best first."""
        flat, reason, waiting, reclaimed = self.scripts.admit(
            day=utc_day(self.clock()),
            accounts=[
                AccountTerms(account.name, account.concurrency, 1000.0 / account.submit_rate)
                for account in self.accounts
            ],
            lease_ms=self.lease_ms,
            batch_max_wait_ms=self.batch_max_wait_ms,
            default_cap=self.default_cap,
            max_admits=max_admits,
            horizon_ms=HORIZON_MS,
            now_ms=self._now_ms(),
        )
        admitted = [
            Admitted(str(flat[i]), str(flat[i + 1]), float(flat[i + 2]) / 1000, int(flat[i + 3]))
            for i in range(0, len(flat), 4)
        ]
        return AdmitResult(admitted, reason, waiting, reclaimed)

    def claim(self, job_id: str, account: str, token: int | None = None) -> bool:
        """True if this job still holds its slot on `account` (the lease is renewed); with a
        `token`, only the slot of the admission that gave it out."""
        return self.scripts.claim(
            job_id, account=account, lease_ms=self.lease_ms, now_ms=self._now_ms(), token=token
        )

    def release(self, job_id: str, account: str, billed: int | None) -> bool:
        """Give the slot back (True if this call did); correct today's spend from reserved to
        `billed` images once, whichever call first knows the count (None: not known yet)."""
        return self.scripts.release(job_id, account=account, billed=billed)

    def reserve_query(self, account: Account) -> float:
        """Reserve the account's next status query; returns seconds to wait before sending it."""
        interval = 1000.0 / account.query_rate * (1 + QUERY_HEADROOM)
        wait_ms = self.scripts.reserve(
            account=account.name,
            kind="query",
            interval_ms=interval,
            tolerance_ms=interval * (QUERY_BURST - 1),
            now_ms=self._now_ms(),
        )
        return wait_ms / 1000

    def pushed_back(self, account: str, kind: str) -> int:
        """The provider answered 429: double this account's spacing for a while."""
        return self.scripts.penalize(
            account=account, kind=kind, most=PENALTY_MAX, ttl_ms=PENALTY_TTL_MS
        )

    def in_flight_jobs(self, account: str) -> list[str]:
        return [str(job) for job in self.redis.zrange(self.keys.slots(account), 0, -1)]

    def in_flight(self, account: str) -> int:
        return int(self.redis.zcard(self.keys.slots(account)))

    def waiting(self) -> dict[str, int]:
        return {
            priority: int(self.redis.zcard(self.keys.backlog(priority))) for priority in PRIORITIES
        }

    def cap(self) -> int:
        value = self.redis.get(self.keys.cap)
        return self.default_cap if value is None else int(str(value))

    def set_cap(self, images: int | None) -> None:
        """Set the daily image cap in Redis (0 = no cap); None returns to the setting."""
        if images is None:
            self.redis.delete(self.keys.cap)
        else:
            self.redis.set(self.keys.cap, images)

    def paused(self) -> int | None:
        """The cap that paused admission, or None while admission runs."""
        value = self.redis.get(self.keys.paused)
        return None if value is None else int(str(value))

    def spent_today(self) -> dict[str, int]:
        data: Any = self.redis.hgetall(self.keys.spend(utc_day(self.clock())))
        return {name: int(value) for name, value in data.items()}

    def should_nudge(self, expire_ms: int = 5000) -> bool:
        """True if no admission run is pending yet: one nudge covers every job enqueued before
        that run starts (it clears the mark first), however many producers enqueue. The mark
        expires, so a lost nudge delays admission by `expire_ms` at most."""
        return bool(self.redis.set(self.keys.admit_nudge, 1, nx=True, px=expire_ms))

    def nudge_taken(self) -> None:
        """An admission run starts: later enqueues must nudge again."""
        self.redis.delete(self.keys.admit_nudge)

    def book(self, name: str, delay: float) -> bool:
        """Book a wake-up (an admission tick, an account's list watch) `delay` seconds from now;
        False if one is already booked as soon or sooner. A booking expires 5 s after its time,
        so a lost message cannot stop a chain for long."""
        at = int((time.time() + max(delay, 0.0)) * 1000)
        return self.scripts.book(name, at_ms=at, ttl_ms=int(delay * 1000) + 5000)

    def woke(self, name: str) -> None:
        """A booked wake-up runs: later wake-ups may be booked again."""
        self.scripts.woke(name, now_ms=int(time.time() * 1000) + 20)
