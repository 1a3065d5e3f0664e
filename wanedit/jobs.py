"""Job records in Redis, changed only by compare-and-set transitions.

A job is one hash. Every change of status runs one Lua script that checks the current status,
writes the fields and, for a terminal status, appends the completion event to the stream: the
transition and its event are one atomic step, so a redelivered task can never emit a second
event for the same job.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from wanedit.errors import JobNotFound
from wanedit.metrics import terminal_increments
from wanedit.provider_time import BEIJING_UTC_OFFSET
from wanedit.states import EVENT_TYPES, TERMINAL, Status, sources_for
from wanedit.webhooks import Targets

log = logging.getLogger("wanedit.jobs")
IDEMPOTENCY_TTL = 24 * 3600
JSON_FIELDS = (
    "request",
    "outputs",
    "error",
    "usage",
    "metadata",
    "provider_results",
    "provider_times",
    "poll_plan",
    "last_error",
    "callbacks",
    "webhook_attempts",
)

# KEYS: job, stream, due index, callbacks index, metrics hash. ARGV: allowed statuses
# (comma-joined, "" = any), new status ("" = keep), ttl, event JSON ("" = none), stream maxlen,
# callbacks due time ("" = none), metric increments as JSON ("" = none), then field/value pairs.
# With callbacks, the event is kept on the job and the job enters the callbacks index in the same
# step, so a worker lost right after it still delivers. The increments count the job's end once.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {-1, ''} end
if ARGV[1] ~= '' then
  local allowed = false
  for status in string.gmatch(ARGV[1], '[^,]+') do
    if status == current then allowed = true end
  end
  if not allowed then return {0, current} end
end
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'status', ARGV[2]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
if ARGV[4] ~= '' then
  redis.call('ZREM', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
  local event = cjson.decode(ARGV[4])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[5]), '*',
             'type', event['type'], 'job_id', event['job_id'], 'data', ARGV[4])
  if ARGV[6] ~= '' then
    redis.call('HSET', KEYS[1], 'event', ARGV[4])
    redis.call('ZADD', KEYS[4], tonumber(ARGV[6]), redis.call('HGET', KEYS[1], 'id'))
  end
end
if ARGV[7] ~= '' then
  for name, amount in pairs(cjson.decode(ARGV[7])) do
    redis.call('HINCRBYFLOAT', KEYS[5], name, amount)
  end
end
return {1, current}
"""

# KEYS: job, callbacks index. ARGV: the number of webhook attempts expected on the job ("" = no
# check), when the job is next due in the index ("" = leave it), then field/value pairs.
_DELIVERY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' then
  local raw = redis.call('HGET', KEYS[1], 'webhook_attempts')
  local count = 0
  if raw and raw ~= '' then count = #cjson.decode(raw) end
  if count ~= tonumber(ARGV[1]) then return 0 end
end
if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
if ARGV[2] == 'done' then
  redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
elseif ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), redis.call('HGET', KEYS[1], 'id'))
end
return 1
"""

# KEYS: job. ARGV: now. Set create_sent_at on a queued job that has none.
_MARK_CREATE = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
local sent = redis.call('HGET', KEYS[1], 'create_sent_at')
if sent and sent ~= '' then return 0 end
redis.call('HSET', KEYS[1], 'create_sent_at', ARGV[1])
return 1
"""

# KEYS: job, idempotency key (or ""), backlog (or ""). ARGV: job id, ttl, idempotency ttl,
# backlog score, field/value pairs. The record and its place in the backlog are one step.
# An existing job is never overwritten (a caller-chosen id sent twice): {0, its id}.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ARGV[1]} end
if KEYS[2] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {0, existing} end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[3]))
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
if KEYS[3] ~= '' then redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), ARGV[1]) end
return {1, ARGV[1]}
"""


_JOB_ID = re.compile(r"[0-9a-f]{32}")


def new_job_id() -> str:
    return uuid.uuid4().hex


def is_job_id(value: object) -> bool:
    """A job id as `new_job_id` makes them: 32 lowercase hex digits (a uuid4's hex)."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


@dataclass
class Job:
    """A job record as read from Redis."""

    id: str
    status: Status
    request: dict[str, Any]
    output_uri: str
    timestamps: dict[str, float] = field(default_factory=dict)
    provider_task_id: str | None = None
    provider_request_id: str | None = None
    provider_status: str | None = None
    provider_results: list[dict[str, Any]] | None = None
    provider_times: dict[str, Any] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    polls: int = 0
    transient_errors: int = 0
    # The error a job is being retried for, cleared by the next good answer: a job that keeps
    # waiting always says why.
    last_error: dict[str, Any] | None = None
    cancel_requested: bool = False
    cancel_refused: str | None = None
    priority: str = "interactive"
    account: str | None = None
    poll_plan: dict[str, float] | None = None
    watch_at: float | None = None
    create_sent_at: float | None = None
    reconcile_tries: int = 0
    empty_looks: int = 0  # consecutive task-list looks that showed no task for a lost create
    recreates: int = 0  # creates sent again after the list showed the last one made nothing
    redrives: int = 0
    finish_since: float | None = None
    # Completion callbacks: where the event goes, the event as sent, and how delivery went.
    callbacks: dict[str, Any] | None = None
    event: str | None = None
    webhook_status: str | None = None
    webhook_attempts: list[dict[str, Any]] = field(default_factory=list)
    on_complete_status: str | None = None

    @classmethod
    def from_hash(cls, data: Mapping[str, str]) -> Job:
        decoded: dict[str, Any] = {
            name: json.loads(data[name]) for name in JSON_FIELDS if data.get(name)
        }
        timestamps = {
            name[2:]: float(value) for name, value in data.items() if name.startswith("t_")
        }
        return cls(
            id=data["id"],
            status=Status(data["status"]),
            request=decoded.get("request", {}),
            output_uri=data.get("output_uri", ""),
            timestamps=timestamps,
            provider_task_id=data.get("provider_task_id") or None,
            provider_request_id=data.get("provider_request_id") or None,
            provider_status=data.get("provider_status") or None,
            provider_results=decoded.get("provider_results"),
            provider_times=decoded.get("provider_times"),
            outputs=decoded.get("outputs") or [],
            error=decoded.get("error"),
            usage=decoded.get("usage"),
            metadata=decoded.get("metadata"),
            polls=int(data.get("polls", 0)),
            transient_errors=int(data.get("transient_errors", 0)),
            last_error=decoded.get("last_error"),
            cancel_requested=data.get("cancel_requested") == "1",
            cancel_refused=data.get("cancel_refused") or None,
            priority=data.get("priority") or "interactive",
            account=data.get("account") or None,
            poll_plan=decoded.get("poll_plan"),
            watch_at=float(data["watch_at"]) if data.get("watch_at") else None,
            create_sent_at=float(data["create_sent_at"]) if data.get("create_sent_at") else None,
            reconcile_tries=int(data.get("reconcile_tries") or 0),
            empty_looks=int(data.get("empty_looks") or 0),
            recreates=int(data.get("recreates") or 0),
            redrives=int(data.get("redrives") or 0),
            finish_since=float(data["finish_since"]) if data.get("finish_since") else None,
            callbacks=decoded.get("callbacks"),
            event=data.get("event") or None,
            webhook_status=data.get("webhook_status") or None,
            webhook_attempts=decoded.get("webhook_attempts") or [],
            on_complete_status=data.get("on_complete_status") or None,
        )

    def public(self) -> dict[str, Any]:
        """The job as users see it (CLI --json, the Python API): no provider URLs, no secrets."""
        return {
            "id": self.id,
            "status": self.status.value,
            "provider_task_id": self.provider_task_id,
            "provider_request_id": self.provider_request_id,
            "provider_status": self.provider_status,
            "outputs": self.outputs,
            "error": self.error,
            "last_error": self.last_error,
            "usage": self.usage,
            "metadata": self.metadata,
            "output_uri": self.output_uri,
            "priority": self.priority,
            "account": self.account,
            "polls": self.polls,
            "provider_times": self.provider_times,
            "cancel_requested": self.cancel_requested,
            "cancel_refused": self.cancel_refused,
            "timestamps": {name: iso(value) for name, value in sorted(self.timestamps.items())},
            "request": self.request,
            "webhook_status": self.webhook_status,
            "webhook_attempts": self.webhook_attempts,
            "on_complete_status": self.on_complete_status,
        }


def encode_fields(fields: Mapping[str, Any]) -> list[str]:
    """Flatten fields into HSET arguments; JSON fields are encoded, None becomes ''."""
    flat: list[str] = []
    for name, value in fields.items():
        if name in JSON_FIELDS:
            text = "" if value is None else json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            text = "1" if value else "0"
        else:
            text = "" if value is None else str(value)
        flat += [name, text]
    return flat


def build_event(job: Job, status: Status, changes: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The completion event for a job entering a terminal status."""
    event_type = EVENT_TYPES[status]
    return {
        "event_id": f"{job.id}:{event_type}",
        "type": event_type,
        "job_id": job.id,
        "status": status.value,
        "provider_task_id": changes.get("provider_task_id", job.provider_task_id),
        "outputs": changes.get("outputs", job.outputs),
        "error": changes.get("error", job.error),
        "usage": changes.get("usage", job.usage),
        "metadata": job.metadata,
        "occurred_at": iso(now),
    }


class JobStore:
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
        self.prefix = key_prefix
        self.events_stream = events_stream
        self.events_maxlen = events_maxlen
        self.ttl = ttl_seconds
        self.clock = clock
        # Who is told when a job ends (from its request and the settings); None: nobody.
        self.targets = targets
        # Provider times are its local time: the completion lag needs them as UTC.
        self.provider_utc_offset = provider_utc_offset
        self._delivery = client.register_script(_DELIVERY)
        self._transition = client.register_script(_TRANSITION)
        self._create = client.register_script(_CREATE)
        self._mark_create = client.register_script(_MARK_CREATE)

    @property
    def metrics_key(self) -> str:
        """Cluster-wide counters (see wanedit.metrics)."""
        return f"{self.prefix}:metrics"

    @property
    def due_key(self) -> str:
        """Active jobs by the time their next step is due: what the sweeper looks at."""
        return f"{self.prefix}:due"

    @property
    def callbacks_key(self) -> str:
        """Ended jobs whose callbacks are owed, by when the next attempt is due."""
        return f"{self.prefix}:callbacks"

    def callbacks_overdue(self, before: float, limit: int) -> list[str]:
        ids: Any = self.redis.zrangebyscore(self.callbacks_key, "-inf", before, start=0, num=limit)
        return [str(job_id) for job_id in ids]

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
        ok = self._delivery(
            keys=[self.job_key(job_id), self.callbacks_key],
            args=[
                "" if attempts is None else attempts,
                "done" if done else ("" if due is None else due),
                *encode_fields(changes),
            ],
        )
        if ok == -1:
            raise JobNotFound(f"job {job_id!r} does not exist (never created, or expired)")
        return bool(ok)

    def set_due(self, job_id: str, at: float) -> None:
        self.redis.zadd(self.due_key, {job_id: at})

    def due_at(self, job_id: str) -> float | None:
        score: Any = self.redis.zscore(self.due_key, job_id)
        return None if score is None else float(score)

    def overdue(self, before: float, limit: int) -> list[str]:
        ids: Any = self.redis.zrangebyscore(self.due_key, "-inf", before, start=0, num=limit)
        return [str(job_id) for job_id in ids]

    def forget_due(self, job_id: str) -> None:
        self.redis.zrem(self.due_key, job_id)

    def mark_create(self, job_id: str) -> bool:
        """Note that a create is about to be sent for this queued job; False if one was noted
        before (it may have reached the provider), so the caller reconciles instead."""
        return bool(self._mark_create(keys=[self.job_key(job_id)], args=[self.clock()]))

    def clear_create(self, job: Job) -> bool:
        """The provider surely made no task: the next create may go."""
        changes = {"create_sent_at": None, "provider_request_id": None}
        return self.update(job, changes, while_in=[Status.QUEUED])

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def idempotency_key(self, key: str) -> str:
        return f"{self.prefix}:idem:{key}"

    def find_idempotent(self, key: str) -> str | None:
        value = self.redis.get(self.idempotency_key(key))
        return str(value) if value else None

    def create(
        self,
        job_id: str,
        request: Mapping[str, Any],
        output_uri: str,
        *,
        idempotency_key: str | None = None,
        backlog: str | None = None,
    ) -> tuple[bool, str]:
        """Record a queued job (and put it in `backlog`, a sorted set, in arrival order); with an
        idempotency key already used, return that job's id instead."""
        now = self.clock()
        score = int(now * 1000)
        fields = {
            "id": job_id,
            "status": Status.QUEUED.value,
            "request": dict(request),
            "output_uri": output_uri,
            "metadata": request.get("metadata"),
            "priority": request.get("priority", "interactive"),
            "n": request.get("n", 1),
            "backlog_score": score,
            "t_queued": now,
            "polls": 0,
        }
        keys = [
            self.job_key(job_id),
            self.idempotency_key(idempotency_key) if idempotency_key else "",
            backlog or "",
        ]
        created, existing = self._create(
            keys=keys, args=[job_id, self.ttl, IDEMPOTENCY_TTL, score, *encode_fields(fields)]
        )
        return bool(created), str(existing)

    def get(self, job_id: str) -> Job:
        data: Any = self.redis.hgetall(self.job_key(job_id))
        if not data:
            raise JobNotFound(f"job {job_id!r} does not exist (never created, or expired)")
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
                pipe.hgetall(self.job_key(job_id))
            found: list[Any] = pipe.execute()
        for data in found:
            if data:
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
        moved, previous = self._run(job.id, sources, target, changes, event, callbacks_due, counts)
        if moved:
            # The one line per change of state, whichever process made it.
            log.info(
                "job %s: %s -> %s",
                job.id,
                previous,
                target.value,
                extra={"job_id": job.id, "from_status": previous, "to_status": target.value},
            )
        return moved

    def update(self, job: Job, changes: Mapping[str, Any], *, while_in: Iterable[Status]) -> bool:
        """Change fields without changing status, only while the job is in one of `while_in`."""
        return self._run(job.id, frozenset(while_in), None, dict(changes), None, None)[0]

    def _run(
        self,
        job_id: str,
        sources: frozenset[Status],
        target: Status | None,
        changes: dict[str, Any],
        event: dict[str, Any] | None,
        callbacks_due: float | None,
        counts: Mapping[str, float] | None = None,
    ) -> tuple[bool, str]:
        ok, current = self._transition(
            keys=[
                self.job_key(job_id),
                self.events_stream,
                self.due_key,
                self.callbacks_key,
                self.metrics_key,
            ],
            args=[
                ",".join(sorted(status.value for status in sources)),
                target.value if target else "",
                self.ttl,
                json.dumps(event, separators=(",", ":")) if event else "",
                self.events_maxlen,
                "" if callbacks_due is None else callbacks_due,
                json.dumps(counts, separators=(",", ":")) if counts else "",
                *encode_fields(changes),
            ],
        )
        if ok == -1:
            raise JobNotFound(f"job {job_id!r} does not exist (never created, or expired)")
        return bool(ok), str(current)
