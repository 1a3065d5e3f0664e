"""The sandbox's configuration, checked once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta, timezone
from typing import Any

from wanedit.sandbox.accounts import Accounts
from wanedit.sandbox.events import EventTarget, redact_headers, redact_url
from wanedit.sandbox.faults import FaultRates, check_lost_modes

RUNTIME_FIELDS = (
    "http_error_rate",
    "throttle_rate",
    "lost_answer_rate",
    "lost_answer_modes",
    "fail_rate",
    "moderation_rate",
    "partial_rate",
    "duration_min",
    "duration_max",
    "arrears_keys",
    "event_url",
    "event_headers",
    "event_delay",
    "event_jitter",
    "event_loss_rate",
    "event_dup_rate",
)
LIST_ORDERS = ("newest", "shuffled")


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox listens, limits each main account and misbehaves.

    Every key of ``api_keys`` and of ``main_accounts`` is accepted. Each tuple of
    ``main_accounts`` is one main account: its keys share one quota (submits, queries, the
    concurrency slots and queue) and see each other's tasks. A key in no group is its own main
    account. Rates are per second; durations and ``result_ttl`` are seconds. The ``*_rate``
    fault fields are fractions in [0, 1]; ``lost_answer_modes`` are drawn uniformly for lost
    answers (see ``wanedit.sandbox.faults``). ``utc_offset_hours`` is the provider's zone, in
    which the time strings are written and read (Beijing, UTC+8). ``region`` is what list rows
    carry.
    ``event_url`` is where each task-end event is POSTed (None: no events), with the extra
    ``event_headers``; ``event_delay``, ``event_jitter`` (seconds), ``event_loss_rate`` and
    ``event_dup_rate`` are sandbox-only faults of that delivery (see ``wanedit.sandbox.events``).
    ``list_order`` is ``"newest"`` (newest first, as the doc's example) or ``"shuffled"`` (a fixed
    random order, so tests can show a client never relies on the order).
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_keys: tuple[str, ...] = ("sk-sandbox",)
    main_accounts: tuple[tuple[str, ...], ...] = ()
    concurrency: int = 5
    submit_rate: float = 5.0
    query_rate: float = 20.0
    duration_min: float = 30.0
    duration_max: float = 120.0
    result_ttl: float = 86400.0
    http_error_rate: float = 0.0
    fail_rate: float = 0.0
    moderation_rate: float = 0.0
    partial_rate: float = 0.0
    throttle_rate: float = 0.0
    lost_answer_rate: float = 0.0
    lost_answer_modes: tuple[str, ...] = ("504", "drop")
    lost_answer_delay: float = 35.0
    utc_offset_hours: float = 8.0
    region: str = "ap-southeast-1"
    list_order: str = "newest"
    # Sandbox-only: a new task shows in the task list only this many seconds after it was made.
    # How soon the provider's list shows a task is undocumented; tests use this to attack a
    # client that takes one empty list for proof that a create made nothing.
    list_delay: float = 0.0
    seed: int | None = None
    # Keys whose main account is in arrears: every call with one answers 400 Arrearage
    # (PROVIDER.md's table). Sandbox-only: which calls an unpaid account may still make is
    # undocumented; here none may. Changeable at run time, so a test can settle the bill.
    arrears_keys: tuple[str, ...] = ()
    # Task-end events (EventBridge's HTTP target, docs/dashscope.md). A receiver's token goes in
    # the URL's query or in a header, as an EventBridge HTTP target is configured.
    event_url: str | None = None
    event_headers: Mapping[str, str] = field(default_factory=dict)
    # Sandbox-only fault knobs: the provider sends each event once, as soon as the task ends.
    event_delay: float = 0.0
    event_jitter: float = 0.0
    event_loss_rate: float = 0.0
    event_dup_rate: float = 0.0

    def __post_init__(self) -> None:
        # Lists are welcome from callers; the frozen config keeps tuples.
        groups = tuple(tuple(group) for group in self.main_accounts)
        object.__setattr__(self, "main_accounts", groups)
        object.__setattr__(self, "api_keys", tuple(self.api_keys))
        object.__setattr__(self, "lost_answer_modes", tuple(self.lost_answer_modes))
        object.__setattr__(self, "arrears_keys", tuple(self.arrears_keys))
        object.__setattr__(self, "event_headers", dict(self.event_headers))
        if self.list_delay < 0:
            raise ValueError("list_delay must not be negative")
        if not self.api_keys or not all(self.api_keys):
            raise ValueError("api_keys must name at least one non-empty key")
        if not all(group and all(group) for group in groups):
            raise ValueError("main_accounts: each main account needs at least one non-empty key")
        self.accounts()
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.submit_rate <= 0 or self.query_rate <= 0:
            raise ValueError("submit_rate and query_rate must be positive")
        check_durations(self.duration_min, self.duration_max)
        if self.result_ttl <= 0:
            raise ValueError("result_ttl must be positive")
        if not -14 <= self.utc_offset_hours <= 14:
            raise ValueError("utc_offset_hours must be within [-14, 14]")
        if self.list_order not in LIST_ORDERS:
            raise ValueError(f"list_order must be one of {', '.join(LIST_ORDERS)}")
        check_lost_modes(self.lost_answer_modes)
        self.fault_rates()
        self.event_target()

    def accounts(self) -> Accounts:
        """The accepted keys and their main accounts."""
        return Accounts(self.api_keys, self.main_accounts)

    def zone(self) -> timezone:
        """The provider's time zone (UTC+8 by default)."""
        return timezone(timedelta(hours=self.utc_offset_hours))

    def fault_rates(self) -> FaultRates:
        """The fault fractions, validated."""
        return FaultRates(
            http_error_rate=self.http_error_rate,
            fail_rate=self.fail_rate,
            moderation_rate=self.moderation_rate,
            partial_rate=self.partial_rate,
            throttle_rate=self.throttle_rate,
            lost_answer_rate=self.lost_answer_rate,
            event_loss_rate=self.event_loss_rate,
            event_dup_rate=self.event_dup_rate,
        )

    def event_target(self) -> EventTarget:
        """Where task-end events go, validated."""
        return EventTarget(self.event_url, self.event_headers, self.event_delay, self.event_jitter)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["api_keys"] = list(self.api_keys)
        data["main_accounts"] = [list(group) for group in self.main_accounts]
        data["lost_answer_modes"] = list(self.lost_answer_modes)
        data["arrears_keys"] = list(self.arrears_keys)
        # A receiver's token may sit in the URL or a header: never shown.
        data["event_url"] = redact_url(self.event_url)
        data["event_headers"] = redact_headers(self.event_headers)
        return data


def check_durations(low: float, high: float) -> None:
    if not 0 <= low <= high:
        raise ValueError(f"durations need 0 <= duration_min <= duration_max, got {low}:{high}")
