"""Global admission control in Redis: our backlog, provider slots, rates and the daily cap.

The backlog stays with us: jobs wait in two sorted sets (interactive, batch) ordered by arrival,
and a job is sent to the provider only when an account has a free slot, so the provider's own
FIFO queue stays empty and the order is ours. Every decision is one Lua script, atomic across
every worker process and machine sharing the Redis.

- Slots: per account a sorted set of job ids scored by lease expiry. A slot is taken at
  admission, renewed by each poll, and given back at a terminal state; a slot whose lease ran
  out (its worker crashed) is reclaimed, and a job that never reached the provider goes back to
  the backlog.
- Rates: generic cell rate algorithm (GCRA) with no burst: submissions at least 1/R s apart and
  status queries at least 1/Q s apart per account, scheduled ahead rather than refused. A 429 from
  the provider doubles the spacing (up to 8x) until it has been quiet for 30 s.
- Priority: the interactive head goes first; a batch head that has waited `batch_max_wait`
  seconds goes before it (so batch work never starves).
- Daily cap: images reserved at admission (n), corrected to what was billed at the end; when the
  next job would pass the cap, admission pauses and says why.

Keys are computed from the job-key prefix inside the scripts, so this needs a single Redis (not
Redis Cluster).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from wanedit.accounts import Account

PENALTY_MAX = 8
PENALTY_TTL_MS = 30_000
HORIZON_MS = 1_000  # admit at most this far ahead of an account's next submission time
QUERY_BURST = 2  # queries that may go back to back; submissions never burst

# The clock is Redis's own (one clock for every machine) unless a test passes one as the last
# argument, in milliseconds.
_NOW = """
local now
if ARGV[#ARGV] ~= '' then
  now = tonumber(ARGV[#ARGV])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: interactive, batch, spend hash, cap, paused; then per account: slots, submit tat, penalty.
# ARGV: job key prefix, account count, lease ms, batch max wait ms, default cap, max admits,
#       horizon ms, day; then per account: name, concurrency, interval ms; then now (or "").
_ADMIT = (
    _NOW
    + """
local accounts = tonumber(ARGV[2])
local function akey(i, k) return KEYS[5 + 3 * (i - 1) + k] end
local function aarg(i, k) return ARGV[8 + 3 * (i - 1) + k] end
local reclaimed = 0
for i = 1, accounts do
  for _, job in ipairs(redis.call('ZRANGEBYSCORE', akey(i, 1), '-inf', now)) do
    redis.call('ZREM', akey(i, 1), job)
    reclaimed = reclaimed + 1
    local jk = ARGV[1] .. job
    if redis.call('HGET', jk, 'status') == 'queued' then
      local backlog = KEYS[1]
      if redis.call('HGET', jk, 'priority') == 'batch' then backlog = KEYS[2] end
      redis.call('HDEL', jk, 'account')
      redis.call('ZADD', backlog, redis.call('HGET', jk, 'backlog_score') or now, job)
    end
  end
end
local cap = tonumber(redis.call('GET', KEYS[4]) or ARGV[5])
local spent = tonumber(redis.call('HGET', KEYS[3], 'total') or '0')
local admitted = {}
local reason = ''
for _ = 1, tonumber(ARGV[6]) do
  local ih = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local bh = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local pick, from
  if #bh > 0 and (#ih == 0 or now - tonumber(bh[2]) >= tonumber(ARGV[4])) then
    pick, from = bh[1], KEYS[2]
  elseif #ih > 0 then
    pick, from = ih[1], KEYS[1]
  end
  if not pick then break end
  local jk = ARGV[1] .. pick
  if redis.call('HGET', jk, 'status') ~= 'queued' then
    redis.call('ZREM', from, pick)
  else
    local n = tonumber(redis.call('HGET', jk, 'n') or '1')
    if cap > 0 and spent + n > cap then reason = 'cap'; break end
    local best, best_tat
    for i = 1, accounts do
      if redis.call('ZCARD', akey(i, 1)) < tonumber(aarg(i, 2)) then
        local tat = tonumber(redis.call('GET', akey(i, 2)) or '0')
        if tat < now then tat = now end
        if best == nil or tat < best_tat then best, best_tat = i, tat end
      end
    end
    if best == nil then reason = 'slots'; break end
    if best_tat - now > tonumber(ARGV[7]) then reason = 'rate'; break end
    local penalty = tonumber(redis.call('GET', akey(best, 3)) or '1')
    redis.call('SET', akey(best, 2), best_tat + tonumber(aarg(best, 3)) * penalty, 'PX', 60000)
    redis.call('ZREM', from, pick)
    redis.call('ZADD', akey(best, 1), now + tonumber(ARGV[3]), pick)
    redis.call('HSET', jk, 'account', aarg(best, 1), 'spend_day', ARGV[8], 'reserved', n)
    redis.call('HDEL', jk, 'settled')
    redis.call('HINCRBY', KEYS[3], 'total', n)
    redis.call('HINCRBY', KEYS[3], aarg(best, 1), n)
    redis.call('EXPIRE', KEYS[3], 3 * 86400)
    spent = spent + n
    table.insert(admitted, pick)
    table.insert(admitted, aarg(best, 1))
    table.insert(admitted, tostring(best_tat - now))
  end
end
if reason == 'cap' then
  redis.call('SET', KEYS[5], tostring(cap), 'PX', 3600000)
else
  redis.call('DEL', KEYS[5])
end
local waiting = redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
return {admitted, reason, waiting, reclaimed}
"""
)

# KEYS: slots, job. ARGV: job id, account, lease ms, now. Renews the lease of the holder.
_CLAIM = (
    _NOW
    + """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
if redis.call('HGET', KEYS[2], 'account') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

# KEYS: slots, job. ARGV: job id, images billed (-1 unknown), spend key prefix.
_RELEASE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local billed = tonumber(ARGV[2])
if billed >= 0 and redis.call('HSETNX', KEYS[2], 'settled', '1') == 1 then
  local day = redis.call('HGET', KEYS[2], 'spend_day')
  local reserved = tonumber(redis.call('HGET', KEYS[2], 'reserved') or '0')
  local account = redis.call('HGET', KEYS[2], 'account')
  if day and account and billed ~= reserved then
    redis.call('HINCRBY', ARGV[3] .. day, 'total', billed - reserved)
    redis.call('HINCRBY', ARGV[3] .. day, account, billed - reserved)
  end
end
return removed
"""

# KEYS: tat, penalty. ARGV: interval ms, burst tolerance ms, now. Reserve the next query time;
# returns the wait in ms. Queries may run up to `tolerance` ahead of the even spacing (a result
# query right after the list call that found its task), never above Q per second on average.
_RESERVE = (
    _NOW
    + """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local penalty = tonumber(redis.call('GET', KEYS[2]) or '1')
local tolerance = tonumber(ARGV[2])
if penalty > 1 then tolerance = 0 end
redis.call('SET', KEYS[1], tat + tonumber(ARGV[1]) * penalty, 'PX', 60000)
local wait = tat - now - tolerance
if wait < 0 then wait = 0 end
return tostring(wait)
"""
)

# KEYS: mark. ARGV: at ms, ttl ms. Book a wake-up unless one is booked for the same time or sooner.
_BOOK = """
local booked = redis.call('GET', KEYS[1])
if booked and tonumber(booked) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""

# KEYS: mark. ARGV: now ms. A wake-up runs: forget its booking (not a later, sooner-booked one).
_WOKE = """
local booked = redis.call('GET', KEYS[1])
if booked and tonumber(booked) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: penalty. ARGV: max, ttl ms.
_PENALIZE = """
local penalty = tonumber(redis.call('GET', KEYS[1]) or '1') * 2
if penalty > tonumber(ARGV[1]) then penalty = tonumber(ARGV[1]) end
redis.call('SET', KEYS[1], penalty, 'PX', tonumber(ARGV[2]))
return penalty
"""


@dataclass(frozen=True)
class Admitted:
    job_id: str
    account: str
    delay: float  # seconds until its submission slot on the account's rate


@dataclass(frozen=True)
class AdmitResult:
    admitted: list[Admitted]
    blocked_by: str  # "" (backlog empty or max reached), "slots", "rate" or "cap"
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
        self.prefix = key_prefix
        self.accounts = list(accounts)
        self.lease_ms = int(lease_seconds * 1000)
        self.batch_max_wait_ms = int(batch_max_wait * 1000)
        self.default_cap = daily_image_cap
        # None: Redis's clock decides (production); a callable: tests control time.
        self.test_clock = clock
        self.clock = clock or time.time
        self._admit = client.register_script(_ADMIT)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._reserve = client.register_script(_RESERVE)
        self._penalize = client.register_script(_PENALIZE)
        self._book = client.register_script(_BOOK)
        self._woke = client.register_script(_WOKE)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _now(self) -> str:
        return "" if self.test_clock is None else str(int(self.test_clock() * 1000))

    def backlog_key(self, priority: str) -> str:
        return self.key("backlog", "batch" if priority == "batch" else "interactive")

    def spend_key(self, day: str) -> str:
        return self.key("spend", day)

    def admit(self, max_admits: int = 50) -> AdmitResult:
        """Take slots for as many waiting jobs as slots, rates and the cap allow, best first."""
        keys = [
            self.backlog_key("interactive"),
            self.backlog_key("batch"),
            self.spend_key(utc_day(self.clock())),
            self.key("cap"),
            self.key("paused"),
        ]
        args: list[Any] = [
            self.key("job", ""),
            len(self.accounts),
            self.lease_ms,
            self.batch_max_wait_ms,
            self.default_cap,
            max_admits,
            HORIZON_MS,
            utc_day(self.clock()),
        ]
        for account in self.accounts:
            keys += [
                self.key("slots", account.name),
                self.key("rate", account.name, "submit"),
                self.key("penalty", account.name, "submit"),
            ]
            args += [account.name, account.concurrency, 1000.0 / account.submit_rate]
        args.append(self._now())
        flat, reason, waiting, reclaimed = self._admit(keys=keys, args=args)
        admitted = [
            Admitted(str(flat[i]), str(flat[i + 1]), float(flat[i + 2]) / 1000)
            for i in range(0, len(flat), 3)
        ]
        return AdmitResult(admitted, str(reason), int(waiting), int(reclaimed))

    def claim(self, job_id: str, account: str) -> bool:
        """True if this job still holds its slot on `account` (the lease is renewed)."""
        keys = [self.key("slots", account), self.key("job", job_id)]
        return bool(self._claim(keys=keys, args=[job_id, account, self.lease_ms, self._now()]))

    def release(self, job_id: str, account: str, billed: int | None) -> bool:
        """Give the slot back (True if this call did); correct today's spend from reserved to
        `billed` images once, whichever call first knows the count (None: not known yet)."""
        keys = [self.key("slots", account), self.key("job", job_id)]
        args: list[str | int] = [job_id, -1 if billed is None else billed, self.key("spend", "")]
        return bool(self._release(keys=keys, args=args))

    def reserve_query(self, account: Account) -> float:
        """Reserve the account's next status query; returns seconds to wait before sending it."""
        keys = [self.key("rate", account.name, "query"), self.key("penalty", account.name, "query")]
        interval = 1000.0 / account.query_rate
        args: list[str | float] = [interval, interval * (QUERY_BURST - 1), self._now()]
        return float(self._reserve(keys=keys, args=args)) / 1000

    def pushed_back(self, account: str, kind: str) -> int:
        """The provider answered 429: double this account's spacing for a while."""
        keys = [self.key("penalty", account, kind)]
        return int(self._penalize(keys=keys, args=[PENALTY_MAX, PENALTY_TTL_MS]))

    def in_flight_jobs(self, account: str) -> list[str]:
        return [str(job) for job in self.redis.zrange(self.key("slots", account), 0, -1)]

    def in_flight(self, account: str) -> int:
        return int(self.redis.zcard(self.key("slots", account)))

    def waiting(self) -> dict[str, int]:
        return {
            priority: int(self.redis.zcard(self.backlog_key(priority)))
            for priority in ("interactive", "batch")
        }

    def cap(self) -> int:
        value = self.redis.get(self.key("cap"))
        return self.default_cap if value is None else int(str(value))

    def set_cap(self, images: int | None) -> None:
        """Set the daily image cap in Redis (0 = no cap); None returns to the setting."""
        if images is None:
            self.redis.delete(self.key("cap"))
        else:
            self.redis.set(self.key("cap"), images)

    def paused(self) -> int | None:
        """The cap that paused admission, or None while admission runs."""
        value = self.redis.get(self.key("paused"))
        return None if value is None else int(str(value))

    def spent_today(self) -> dict[str, int]:
        data: Any = self.redis.hgetall(self.spend_key(utc_day(self.clock())))
        return {name: int(value) for name, value in data.items()}

    def should_nudge(self, expire_ms: int = 5000) -> bool:
        """True if no admission run is pending yet: one nudge covers every job enqueued before
        that run starts (it clears the mark first), however many producers enqueue. The mark
        expires, so a lost nudge delays admission by `expire_ms` at most."""
        return bool(self.redis.set(self.key("admit", "nudge"), 1, nx=True, px=expire_ms))

    def nudge_taken(self) -> None:
        """An admission run starts: later enqueues must nudge again."""
        self.redis.delete(self.key("admit", "nudge"))

    def book(self, name: str, delay: float) -> bool:
        """Book a wake-up (an admission tick, an account's list watch) `delay` seconds from now;
        False if one is already booked as soon or sooner. A booking expires 5 s after its time,
        so a lost message cannot stop a chain for long."""
        at = int((time.time() + max(delay, 0.0)) * 1000)
        return bool(self._book(keys=[self.key("wake", name)], args=[at, int(delay * 1000) + 5000]))

    def woke(self, name: str) -> None:
        """A booked wake-up runs: later wake-ups may be booked again."""
        self._woke(keys=[self.key("wake", name)], args=[int(time.time() * 1000) + 20])
