"""The job record: every field of a job's Redis hash, declared once. Pure.

Each field's type decides how it is written and read: JSON for dicts and lists, "1"/"0" for
flags, text for the rest, and an empty string for None. Status times are a family of fields,
`t_<status>`, read back as `timestamps`. Some fields are written by the Lua scripts (admission's
`account`, `spend_day`, `reserved`, `settled`, `admit_token`; the terminal transition's
`event`): they are declared here all the same, so a record has one schema.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from wanedit.states import EVENT_TYPES, TERMINAL, Status

# A field whose hash fields are `prefix + name`, read back as one dict.
_FAMILY = "family"


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


class Phase(StrEnum):
    """Where a job is, finer than its status (what the tasks and the sweeper tell apart)."""

    QUEUED = "queued"  # in the backlog, waiting for a slot
    ADMITTED = "admitted"  # queued and given a slot on an account; no create sent yet
    CREATING = "creating"  # queued, a create was sent: its task may exist at the provider
    SUBMITTED = "submitted"  # the provider task exists
    RUNNING = "running"  # the provider is working on it
    FINISHING = "finishing"  # the provider succeeded; its results are being copied
    TERMINAL = "terminal"  # succeeded, failed or canceled


@dataclass
class Job:
    """A job record as read from Redis."""

    id: str
    status: Status
    request: dict[str, Any] = field(default_factory=dict)
    output_uri: str = ""
    # t_queued, t_submitted, ...: when the job entered each status (unix seconds).
    timestamps: dict[str, float] = field(default_factory=dict, metadata={_FAMILY: "t_"})
    priority: str = "interactive"
    n: int = 1  # images asked for: what admission reserves against the daily cap
    backlog_score: int | None = None  # arrival in ms: its place in the backlog
    # Admission (written by its scripts): the account whose slot it holds, and the images
    # reserved on that UTC day until the billed count settles them.
    account: str | None = None
    spend_day: str | None = None
    reserved: int | None = None
    settled: bool = False
    # Counts the job's admissions: its submit message carries the one it was sent for.
    admit_token: int | None = None
    provider_task_id: str | None = None
    provider_request_id: str | None = None
    provider_status: str | None = None
    provider_results: list[dict[str, Any]] | None = None
    provider_times: dict[str, Any] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    # The caller's idempotency key, if any: it is kept as long as the job (see JobStore).
    idempotency_key: str | None = None
    # sha256 of the request's edit fields (EditRequest.fingerprint): the key names this edit.
    request_fingerprint: str | None = None
    polls: int = 0
    transient_errors: int = 0
    # The error a job is being retried for, cleared by the next good answer: a job that keeps
    # waiting always says why.
    last_error: dict[str, Any] | None = None
    cancel_requested: bool = False
    cancel_refused: str | None = None
    poll_plan: dict[str, float] | None = None
    watch_at: float | None = None
    create_sent_at: float | None = None
    first_create_at: float | None = None  # the first create's moment: deadlines count from it
    # When the worker that sent the create saw its answer lost (None: no worker has said so).
    create_lost_at: float | None = None
    reconcile_tries: int = 0
    empty_looks: int = 0  # consecutive task-list looks that showed no task for a lost create
    failed_looks: int = 0  # task-list calls for a lost create that failed (throttled, 5xx)
    recreates: int = 0  # creates sent again after the list showed the last one made nothing
    reconciled: str | None = None  # how a lost create ended: "adopted" or "recreated"
    # The sweeper: steps it sent again, when it last did, lost re-drives in a row (its own
    # message never ran), and when a step message of the job last started after a re-drive.
    redrives: int = 0
    redrive_at: float | None = None
    losses: int = 0
    stepped_at: float | None = None
    finish_since: float | None = None
    # Completion callbacks: where the event goes, the event as sent, and how delivery went.
    callbacks: dict[str, Any] | None = None
    event: str | None = None
    webhook_status: str | None = None
    webhook_attempts: list[dict[str, Any]] = field(default_factory=list)
    on_complete_status: str | None = None

    @property
    def phase(self) -> Phase:
        if self.status in TERMINAL:
            return Phase.TERMINAL
        if self.status is Status.QUEUED:
            if self.create_sent_at is not None:
                return Phase.CREATING
            return Phase.ADMITTED if self.account else Phase.QUEUED
        if self.provider_status == "SUCCEEDED":
            return Phase.FINISHING
        return Phase.SUBMITTED if self.status is Status.SUBMITTED else Phase.RUNNING

    @classmethod
    def from_hash(cls, data: Mapping[str, str]) -> Job:
        values: dict[str, Any] = {}
        for spec in _specs():
            if spec.family is not None:
                values[spec.name] = {
                    name.removeprefix(spec.family): float(text)
                    for name, text in data.items()
                    if name.startswith(spec.family)
                }
            elif data.get(spec.name):
                value = spec.decode(data[spec.name])
                if value is not None or spec.optional:
                    values[spec.name] = value
        return cls(**values)

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


@dataclass(frozen=True)
class _Spec:
    """How one declared field is written and read."""

    name: str
    kind: type
    optional: bool
    family: str | None

    def encode(self, value: Any) -> str:
        if value is None:
            return ""
        if self.kind in (dict, list):
            return json.dumps(value, separators=(",", ":"))
        if self.kind is bool:
            return "1" if value else "0"
        return str(value)

    def decode(self, text: str) -> Any:
        if self.kind in (dict, list):
            return json.loads(text)
        if self.kind is bool:
            return text == "1"
        return self.kind(text)


def _kind(hint: Any) -> tuple[type, bool]:
    """The plain type behind a field's annotation, and whether it may be None."""
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    if optional:
        (hint,) = [arg for arg in args if arg is not type(None)]
    return typing.get_origin(hint) or hint, optional


@cache
def _specs() -> tuple[_Spec, ...]:
    hints = typing.get_type_hints(Job)
    specs = []
    for spec in fields(Job):
        kind, optional = _kind(hints[spec.name])
        specs.append(_Spec(spec.name, kind, optional, spec.metadata.get(_FAMILY)))
    return tuple(specs)


@cache
def _by_name() -> dict[str, _Spec]:
    return {spec.name: spec for spec in _specs() if spec.family is None}


def _spec_for(name: str) -> _Spec:
    spec = _by_name().get(name)
    if spec is not None:
        return spec
    for family in _specs():
        if family.family is not None and name.startswith(family.family):
            return _Spec(name, float, True, None)
    raise ValueError(f"{name!r} is not a field of the job record (see wanedit.store.record)")


def encode_fields(changes: Mapping[str, Any]) -> list[str]:
    """Flatten fields into HSET arguments, each encoded as its declared type says."""
    flat: list[str] = []
    for name, value in changes.items():
        flat += [name, _spec_for(name).encode(value)]
    return flat


def build_event(job: Job, status: Status, changes: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The completion event for a job entering a terminal status."""
    event_type = EVENT_TYPES[status]
    event: dict[str, Any] = {
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
    if job.cancel_requested and status is not Status.CANCELED:
        # The cancel came when the provider could no longer stop the task: it is reported.
        event["cancel"] = "too_late"
    return event
