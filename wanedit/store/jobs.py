"""Job records in Redis, changed only by compare-and-set transitions.

A job is one hash (its fields are declared in wanedit.store.record). Every change of status
runs one Lua script that checks the current status, writes the fields and, for a terminal
status, appends the completion event to the stream: the transition and its event are one
atomic step, so a redelivered task can never emit a second event for the same job.

A record never expires while its job has not ended, however long it waits in the backlog: its
retention (`ttl_seconds`) starts with the terminal transition, in the same step, and so does its
idempotency key's. A record that goes anyway (evicted, deleted by hand) is reported: the job
ends with a `job.failed` event saying so (`record_lost`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis

from wanedit.errors import IdempotencyConflict, JobNotFound
from wanedit.metrics import terminal_increments
from wanedit.provider_time import BEIJING_UTC_OFFSET
from wanedit.states import TERMINAL, Status, sources_for
from wanedit.store.indexes import Indexes
from wanedit.store.keys import Keys
from wanedit.store.record import Job, build_event, encode_fields
from wanedit.store.scripts import Mark, NewRecord, Recorded, Scripts, TaskRecord
from wanedit.webhooks import Targets

log = logging.getLogger("wanedit.jobs")


def _missing(job_id: str) -> JobNotFound:
    return JobNotFound(f"job {job_id!r} does not exist (never created, or expired)")


@dataclass(frozen=True)
class NewJob:
    """A job to record as queued: its id, request as stored, output and where it waits."""

    job_id: str
    request: Mapping[str, Any]
    output_uri: str
    idempotency_key: str | None = None
    backlog: str | None = None
    fingerprint: str | None = None


class JobStore(Indexes):
    """Reads and changes job records; every change is one atomic script call."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str,
        events_stream: str,
        events_maxlen: int,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        targets: Callable[[Mapping[str, Any]], Targets] | None = None,
        provider_utc_offset: float = BEIJING_UTC_OFFSET,
    ) -> None:
        self.redis = client
        self.keys = Keys(key_prefix)
        self.events_stream = events_stream
        self.events_maxlen = events_maxlen
        self.ttl = ttl_seconds
        self.clock = clock
        # Who is told when a job ends (from its request and the settings); None: nobody.
        self.targets = targets
        # Provider times are its local time: the completion lag needs them as UTC.
        self.provider_utc_offset = provider_utc_offset
        self.scripts = Scripts(client, self.keys)

    def create(
        self,
        job_id: str,
        request: Mapping[str, Any],
        output_uri: str,
        *,
        idempotency_key: str | None = None,
        backlog: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[bool, str]:
        """Record a queued job (and put it in `backlog`, a sorted set, in arrival order); with an
        idempotency key already used, return that job's id instead, or raise
        IdempotencyConflict when that job was recorded with another `fingerprint` (a job
        recorded without one, or a request without one, is not compared)."""
        job = NewJob(job_id, request, output_uri, idempotency_key, backlog, fingerprint)
        created, existing, conflict = self.create_many([job])[0]
        if conflict:
            raise IdempotencyConflict(str(idempotency_key), existing)
        return created, existing

    def create_many(self, jobs: Sequence[NewJob]) -> list[tuple[bool, str, bool]]:
        """`create` for each job in one atomic step and one round trip; per job, in order:
        (created, the job's id or the one its idempotency key made first, whether that one was
        recorded with another fingerprint). Nothing is raised for a conflict: the caller
        reports it for that job alone. The jobs keep their order in the backlog: all arrive in
        this millisecond, each a fraction of it after the one before."""
        now = self.clock()
        base = int(now * 1000)
        entries = []
        for offset, job in enumerate(jobs):
            request = job.request
            fields = {
                "id": job.job_id,
                "status": Status.QUEUED.value,
                "request": dict(request),
                "output_uri": job.output_uri,
                "metadata": request.get("metadata"),
                "priority": request.get("priority", "interactive"),
                "n": request.get("n", 1),
                "backlog_score": base,
                "t_queued": now,
                "polls": 0,
                "idempotency_key": job.idempotency_key,
                "request_fingerprint": job.fingerprint,
            }
            entries.append(
                NewRecord(
                    job.job_id,
                    job.idempotency_key,
                    job.backlog,
                    base + offset / len(jobs),
                    job.fingerprint,
                    encode_fields(fields),
                )
            )
        return self.scripts.create_many(entries)

    def exists(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.keys.job(job_id)))

    def find_idempotent(self, key: str, fingerprint: str | None = None) -> str | None:
        """The job the key made, if any; IdempotencyConflict when that job was recorded with
        another `fingerprint` (the create script checks the same again, atomically)."""
        value = self.redis.get(self.keys.idempotency(key))
        if not value:
            return None
        job_id = str(value)
        if fingerprint is not None:
            stored = self.redis.hget(self.keys.job(job_id), "request_fingerprint")
            if stored and str(stored) != fingerprint:
                raise IdempotencyConflict(key, job_id)
        return job_id

    def find_idempotent_many(
        self, keyed: Sequence[tuple[str, str | None]]
    ) -> list[tuple[str | None, bool]]:
        """`find_idempotent` for each (key, fingerprint) in two round trips at most: per key,
        (the job it made or None, whether that job was recorded with another fingerprint)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key, _ in keyed:
                pipe.get(self.keys.idempotency(key))
            found: list[Any] = pipe.execute()
        compare = [
            (index, str(job_id))
            for index, (job_id, (_, fingerprint)) in enumerate(zip(found, keyed, strict=True))
            if job_id and fingerprint is not None
        ]
        stored: list[Any] = []
        if compare:
            with self.redis.pipeline(transaction=False) as pipe:
                for _, job_id in compare:
                    pipe.hget(self.keys.job(job_id), "request_fingerprint")
                stored = pipe.execute()
        conflicts = {
            index
            for (index, _), value in zip(compare, stored, strict=True)
            if value and str(value) != keyed[index][1]
        }
        return [
            (str(job_id) if job_id else None, index in conflicts)
            for index, job_id in enumerate(found)
        ]

    def get(self, job_id: str) -> Job:
        data: Any = self.redis.hgetall(self.keys.job(job_id))
        if not data or not data.get("status"):
            raise _missing(job_id)
        return Job.from_hash(data)

    def get_many(self, job_ids: Iterable[str], *, chunk: int = 500) -> Iterator[Job]:
        """The jobs that exist among `job_ids`, in order, read `chunk` at a time in one round
        trip each (a batch of 100,000 jobs is 200 round trips, not 100,000)."""
        pending: list[str] = []
        for job_id in job_ids:
            pending.append(job_id)
            if len(pending) >= chunk:
                yield from self._read(pending)
                pending = []
        if pending:
            yield from self._read(pending)

    def _read(self, job_ids: list[str]) -> Iterator[Job]:
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.keys.job(job_id))
            found: list[Any] = pipe.execute()
        for data in found:
            if data and data.get("status"):
                yield Job.from_hash(data)

    def transition(
        self,
        job: Job,
        target: Status,
        changes: Mapping[str, Any] | None = None,
        *,
        allowed_from: Iterable[Status] | None = None,
    ) -> bool:
        """Move `job` to `target` if its stored status still allows it; False if it did not."""
        changes = dict(changes or {})
        now = self.clock()
        changes[f"t_{target.value}"] = now
        sources = sources_for(target) if allowed_from is None else frozenset(allowed_from)
        event = build_event(job, target, changes, now) if target in TERMINAL else None
        counts = None
        if event is not None:
            counts = terminal_increments(job, target.value, changes, now, self.provider_utc_offset)
        callbacks_due = None
        if event is not None and self.targets is not None:
            targets = self.targets(job.request)
            if targets.any:
                changes["callbacks"] = asdict(targets)
                if targets.webhook_url:
                    changes["webhook_status"] = "pending"
                if targets.on_complete:
                    changes["on_complete_status"] = "pending"
                callbacks_due = now
        ok, previous = self.scripts.transition(
            job.id,
            expected=sources,
            target=target,
            ttl=self.ttl,
            stream=self.events_stream,
            maxlen=self.events_maxlen,
            event=event,
            callbacks_due=callbacks_due,
            increments=counts,
            idempotency_key=job.idempotency_key,
            fields=encode_fields(changes),
        )
        if ok == -1:
            raise _missing(job.id)
        if ok:
            # The one line per change of state, whichever process made it.
            log.info(
                "job %s: %s -> %s",
                job.id,
                previous,
                target.value,
                extra={"job_id": job.id, "from_status": previous, "to_status": target.value},
            )
        return bool(ok)

    def update(
        self, job: Job, changes: Mapping[str, Any], *, while_in: Iterable[Status] | None
    ) -> bool:
        """Change fields without changing status, only while the job is in one of `while_in`
        (None: whatever its status)."""
        expected = None if while_in is None else frozenset(while_in)
        if expected is not None and not expected:
            raise ValueError("while_in names no status: pass None to allow any")
        ok, _ = self.scripts.transition(
            job.id,
            expected=expected,
            target=None,
            ttl=self.ttl,
            stream=self.events_stream,
            maxlen=self.events_maxlen,
            idempotency_key=job.idempotency_key,
            fields=encode_fields(changes),
        )
        if ok == -1:
            raise _missing(job.id)
        return bool(ok)

    def record_lost(self, job_id: str, code: str, message: str) -> bool:
        """End a job whose record is gone: a failed record in its place (kept `ttl_seconds`) and
        its `job.failed` event, in one step. False if the job has a record after all (or was
        reported before)."""
        now = self.clock()
        job = Job(id=job_id, status=Status.QUEUED)
        changes: dict[str, Any] = {"error": {"code": code, "message": message}}
        event = build_event(job, Status.FAILED, changes, now)
        counts = terminal_increments(job, Status.FAILED.value, changes, now)
        fields = {"id": job_id, "status": Status.FAILED.value, "t_failed": now, **changes}
        return self.scripts.lost(
            job_id,
            ttl=self.ttl,
            stream=self.events_stream,
            maxlen=self.events_maxlen,
            event=event,
            increments=counts,
            fields=encode_fields(fields),
        )

    def lost(self, limit: int) -> list[str]:
        """Jobs whose record admission found gone, not reported yet."""
        ids: Any = self.redis.zrange(self.keys.lost, 0, limit - 1)
        return [str(job_id) for job_id in ids]

    def mark_create(self, job_id: str, *, now: float, due: float) -> Mark:
        """Note that a create is about to be sent at `now` for this queued job, with the job in
        the due index at `due` (when its outcome must be known) in the same step. Anything but
        NOTED: no create may go (BEFORE: one may have reached the provider; reconcile)."""
        return self.scripts.mark_create(job_id, now=now, due=due)

    def clear_create(self, job_id: str, sent_at: float) -> bool:
        """The provider surely made no task for the create sent at `sent_at`: the next create
        may go. False if another create is noted (or the job moved on)."""
        return self.scripts.clear_create(job_id, sent_at=sent_at)

    def record_delivery(
        self,
        job_id: str,
        changes: Mapping[str, Any],
        *,
        attempts: int | None = None,
        due: float | None = None,
        done: bool = False,
    ) -> bool:
        """Write delivery fields; with `attempts`, only if the job still has that many webhook
        attempts (a redelivered attempt finds one more and is dropped). `due` books the next
        attempt in the callbacks index, `done` takes the job out of it."""
        ok = self.scripts.delivery(
            job_id, attempts=attempts, due=due, done=done, fields=encode_fields(changes)
        )
        if ok == -1:
            raise _missing(job_id)
        return bool(ok)

    def record_task(
        self, job: Job, task_id: str, changes: Mapping[str, Any], *, due: float
    ) -> TaskRecord:
        """Record the provider task a create made, only where no task id is recorded: a queued
        job becomes submitted with its first poll due at `due`, in one step. A job that ended
        meanwhile keeps the id (its status unchanged), so the task is never lost."""
        fields = {**changes, f"t_{Status.SUBMITTED.value}": self.clock()}
        answer = self.scripts.record_task(
            job.id, task_id=task_id, due=due, fields=encode_fields(fields)
        )
        if answer.outcome is Recorded.MISSING:
            raise _missing(job.id)
        if answer.outcome is Recorded.SUBMITTED:
            log.info(
                "job %s: %s -> %s",
                job.id,
                answer.previous,
                Status.SUBMITTED.value,
                extra={
                    "job_id": job.id,
                    "from_status": answer.previous,
                    "to_status": Status.SUBMITTED.value,
                },
            )
        return answer
