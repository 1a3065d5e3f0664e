"""The Lua scripts, loaded by name from `lua/`, each behind a typed wrapper.

A wrapper takes keyword arguments, builds the script's KEYS from `Keys` and encodes its ARGV:
absent values are None here (Redis has no nil argument, so a script receives them empty), and
statuses come from the `Status` enum. Each `.lua` file says its KEYS, ARGV and answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from importlib.resources import files
from typing import Any

import redis

from wanedit.states import TERMINAL, Status
from wanedit.store.keys import Keys

# Scripts that read the time start with now.lua.
_CLOCKED = frozenset({"admit", "claim", "reserve"})
NAMES = (
    "transition",
    "create",
    "mark_create",
    "clear_create",
    "record_task",
    "delivery",
    "admit",
    "claim",
    "release",
    "reserve",
    "penalize",
    "book",
    "woke",
    "lost",
    "batch_hold",
    # Paused accounts (wanedit.store.accounts runs them).
    "account_pause",
    "account_resume",
    "requeue",
)


@cache
def source(name: str) -> str:
    """The text of a script as it is sent to Redis."""
    lua = files("wanedit.store").joinpath("lua")
    body = lua.joinpath(f"{name}.lua").read_text()
    return lua.joinpath("now.lua").read_text() + body if name in _CLOCKED else body


Arg = str | int | float


def _opt(value: Arg | None) -> Arg:
    return "" if value is None else value


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class NewRecord:
    """One job for the create script: its id, idempotency key, backlog, score and fields."""

    job_id: str
    idempotency_key: str | None
    backlog: str | None
    score: float  # its place in the backlog: arrival in ms (a fraction orders one chunk)
    fingerprint: str | None
    fields: Sequence[str]


class Mark(IntEnum):
    """What noting a create found (see mark_create.lua)."""

    NOTED = 1  # the create may go
    BEFORE = 0  # a create was noted before: it may have reached the provider
    NOT_QUEUED = -1  # the job has moved on or ended
    CANCEL = -2  # a cancel was requested: no create may go


class Recorded(IntEnum):
    """What recording a provider task found (see record_task.lua)."""

    SUBMITTED = 1  # recorded: the job is submitted
    HAS_TASK = 0  # the job has a task id already (or moved on)
    ENDED = 2  # the job had ended with no task: the id is kept on it
    MISSING = -1  # no such job


@dataclass(frozen=True)
class TaskRecord:
    """The answer of `Scripts.record_task`."""

    outcome: Recorded
    previous: str  # the status the job had
    task_id: str | None  # the id already recorded, when there was one
    cancel_requested: bool = False


@dataclass(frozen=True)
class AccountTerms:
    """What admission needs to know of an account."""

    name: str
    concurrency: int
    interval_ms: float  # between two submissions


class Scripts:
    """Every script registered on one client (Redis caches them by hash)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._run = {name: client.register_script(source(name)) for name in NAMES}

    def transition(
        self,
        job_id: str,
        *,
        expected: Iterable[Status] | None,
        target: Status | None,
        ttl: int,
        stream: str,
        maxlen: int,
        event: Mapping[str, Any] | None = None,
        callbacks_due: float | None = None,
        increments: Mapping[str, float] | None = None,
        idempotency_key: str | None = None,
        fields: Sequence[str] = (),
    ) -> tuple[int, str]:
        """Write `fields` (and `target`) while the job's status is one of `expected` (None: any
        status); with `event`, end the job and start the retention `ttl` of its record (and of
        its `idempotency_key`). Returns (-1 no job | 0 refused | 1 done, the status it had)."""
        keys = self.keys
        key_list = [keys.job(job_id), stream, keys.due, keys.callbacks, keys.metrics]
        if idempotency_key is not None:
            key_list.append(keys.idempotency(idempotency_key))
        ok, previous = self._run["transition"](
            keys=key_list,
            args=[
                _flag(expected is not None),
                ",".join(sorted(status.value for status in expected or ())),
                "" if target is None else target.value,
                ttl,
                _json(event) if event else "",
                maxlen,
                _opt(callbacks_due),
                _json(increments) if increments else "",
                ",".join(sorted(status.value for status in TERMINAL)),
                *fields,
            ],
        )
        return int(ok), str(previous)

    def create(
        self,
        job_id: str,
        *,
        idempotency_key: str | None,
        backlog: str | None,
        score: int,
        fingerprint: str | None = None,
        fields: Sequence[str],
    ) -> tuple[bool, str, bool]:
        """Record a job (and put it in `backlog` at `score`), with no expiry. Returns (created,
        the job's id: this one, or the one the idempotency key made first, whether that one
        was recorded with a fingerprint other than `fingerprint`)."""
        entry = NewRecord(job_id, idempotency_key, backlog, score, fingerprint, fields)
        return self.create_many([entry])[0]

    def create_many(self, entries: Sequence[NewRecord]) -> list[tuple[bool, str, bool]]:
        """`create` for each entry, in order, in one call (one round trip, one atomic step)."""
        if not entries:
            return []
        keys: list[str] = []
        args: list[Arg] = [self.keys.job_prefix, len(entries)]
        for entry in entries:
            keys.append(self.keys.job(entry.job_id))
            if entry.idempotency_key is not None:
                keys.append(self.keys.idempotency(entry.idempotency_key))
            if entry.backlog is not None:
                keys.append(entry.backlog)
            args += [
                entry.job_id,
                entry.score,
                _flag(entry.idempotency_key is not None),
                _flag(entry.backlog is not None),
                entry.fingerprint or "",
                # Raw UTF-8: the script's JSON decoder gives back exactly these strings.
                json.dumps(list(entry.fields), separators=(",", ":"), ensure_ascii=False),
            ]
        flat = self._run["create"](keys=keys, args=args)
        pairs = zip(flat[0::2], flat[1::2], strict=True)
        return [(int(code) == 1, str(winner), int(code) == -1) for code, winner in pairs]

    def lost(
        self,
        job_id: str,
        *,
        ttl: int,
        stream: str,
        maxlen: int,
        event: Mapping[str, Any],
        increments: Mapping[str, float],
        fields: Sequence[str],
    ) -> bool:
        """End a job whose record is gone with a failed record and its event (see lost.lua);
        False when it has a record after all."""
        keys = self.keys
        return bool(
            self._run["lost"](
                keys=[keys.job(job_id), stream, keys.due, keys.metrics, keys.lost],
                args=[job_id, ttl, _json(event), maxlen, _json(increments), *fields],
            )
        )

    def mark_create(self, job_id: str, *, now: float, due: float) -> Mark:
        """Note a create about to be sent for a queued job, and book the job in the due index
        at `due` in the same step."""
        keys = [self.keys.job(job_id), self.keys.due]
        args: list[Arg] = [now, Status.QUEUED.value, due]
        return Mark(int(self._run["mark_create"](keys=keys, args=args)))

    def clear_create(self, job_id: str, *, sent_at: float) -> bool:
        """Clear the create noted at `sent_at` (it surely made no task); False if the job is not
        queued or another create is noted."""
        args: list[Arg] = [Status.QUEUED.value, sent_at]
        return bool(self._run["clear_create"](keys=[self.keys.job(job_id)], args=args))

    def record_task(
        self, job_id: str, *, task_id: str, due: float, fields: Sequence[str]
    ) -> TaskRecord:
        """Record a provider task on a job that has none (see record_task.lua)."""
        ended = ",".join(sorted(status.value for status in TERMINAL))
        args: list[Arg] = [Status.QUEUED.value, Status.SUBMITTED.value, ended, task_id, due]
        answer = self._run["record_task"](
            keys=[self.keys.job(job_id), self.keys.due], args=[*args, *fields]
        )
        outcome, previous, recorded = Recorded(int(answer[0])), str(answer[1]), str(answer[2])
        cancel = len(answer) > 3 and str(answer[3]) == "1"
        return TaskRecord(outcome, previous, recorded or None, cancel)

    def delivery(
        self,
        job_id: str,
        *,
        attempts: int | None,
        due: float | None,
        done: bool,
        fields: Sequence[str],
    ) -> int:
        """Write delivery fields (only if the job has `attempts` webhook attempts, when given);
        book the next attempt at `due` or, `done`, leave the callbacks index. Returns -1 when
        there is no job, 0 when the attempts differ, 1 once written."""
        index = "done" if done else ("keep" if due is None else "book")
        return int(
            self._run["delivery"](
                keys=[self.keys.job(job_id), self.keys.callbacks],
                args=[_flag(attempts is not None), _opt(attempts), index, _opt(due), *fields],
            )
        )

    def admit(
        self,
        *,
        day: str,
        accounts: Sequence[AccountTerms],
        lease_ms: int,
        batch_max_wait_ms: int,
        default_cap: int,
        max_admits: int,
        horizon_ms: int,
        now_ms: int | None,
    ) -> tuple[list[Any], str, int, int]:
        """One admission run (see admit.lua): (job, account, delay ms, token, ...), what
        blocked, jobs waiting, slots reclaimed."""
        keys = self.keys
        key_list = [
            keys.backlog("interactive"),
            keys.backlog("batch"),
            keys.spend(day),
            keys.cap,
            keys.paused,
        ]
        args: list[Any] = [
            keys.job_prefix,
            len(accounts),
            lease_ms,
            batch_max_wait_ms,
            default_cap,
            max_admits,
            horizon_ms,
            day,
            Status.QUEUED.value,
            keys.spend_prefix,
        ]
        for account in accounts:
            key_list += [
                keys.slots(account.name),
                keys.rate(account.name, "submit"),
                keys.penalty(account.name, "submit"),
            ]
            args += [account.name, account.concurrency, account.interval_ms]
        key_list += [keys.lost, keys.account_pauses]
        args.append(_opt(now_ms))
        flat, reason, waiting, reclaimed = self._run["admit"](keys=key_list, args=args)
        return list(flat), str(reason), int(waiting), int(reclaimed)

    def claim(
        self,
        job_id: str,
        *,
        account: str,
        lease_ms: int,
        now_ms: int | None,
        token: int | None = None,
    ) -> bool:
        """Renew the job's lease; False if it no longer holds a slot on `account` (from the
        admission that gave out `token`, when given)."""
        keys = [self.keys.slots(account), self.keys.job(job_id)]
        args: list[Arg] = [job_id, account, _opt(token), lease_ms, _opt(now_ms)]
        return bool(self._run["claim"](keys=keys, args=args))

    def release(self, job_id: str, *, account: str, billed: int | None) -> bool:
        """Give the slot back (True if this call did); settle the spend once `billed` is known."""
        keys = [self.keys.slots(account), self.keys.job(job_id)]
        args: list[Arg] = [job_id, -1 if billed is None else billed, self.keys.spend_prefix]
        return bool(self._run["release"](keys=keys, args=args))

    def reserve(
        self,
        *,
        account: str,
        kind: str,
        interval_ms: float,
        tolerance_ms: float,
        now_ms: int | None,
    ) -> float:
        """Reserve the account's next `kind` call; returns the wait in ms."""
        keys = [self.keys.rate(account, kind), self.keys.penalty(account, kind)]
        args = [interval_ms, tolerance_ms, _opt(now_ms)]
        return float(self._run["reserve"](keys=keys, args=args))

    def penalize(self, *, account: str, kind: str, most: int, ttl_ms: int) -> int:
        """Double the account's `kind` spacing (up to `most` times) for `ttl_ms`."""
        keys = [self.keys.penalty(account, kind)]
        return int(self._run["penalize"](keys=keys, args=[most, ttl_ms]))

    def book(self, name: str, *, at_ms: int, ttl_ms: int) -> bool:
        """Book a wake-up at `at_ms` unless one is booked as soon or sooner."""
        return bool(self._run["book"](keys=[self.keys.wake(name)], args=[at_ms, ttl_ms]))

    def woke(self, name: str, *, now_ms: int) -> None:
        """Forget a wake-up's booking once it runs (not a sooner one booked since)."""
        self._run["woke"](keys=[self.keys.wake(name)], args=[now_ms])

    def batch_hold(
        self,
        batch_id: str,
        *,
        token: str,
        lease: int,
        line: int | None = None,
        retention: int = 0,
    ) -> bool:
        """Take or keep a batch's run lock for `lease` seconds (0: let it go) and record `line`
        as handled; False when another runner holds it or the line was recorded before."""
        keys = [self.keys.batch_slot(batch_id), self.keys.batch(batch_id).info]
        args: list[Arg] = [token, lease, _opt(line), retention]
        return bool(self._run["batch_hold"](keys=keys, args=args))
