"""Cluster-wide counters: their names, what a job's end adds, and how they read back. Pure.

Counters are fields of one Redis hash (wanedit.store.counters), named `name` or
`name|label=value|...`. What a job's end adds is computed here and applied by the job store's
transition script, in the same atomic step as the terminal status and its event: each job is
counted exactly once, however often its tasks run. Histograms keep one field per bucket (not
cumulative), a `_sum` and a `_count`; `/metrics` and `wanedit top` read them back into the same
`Snapshot`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wanedit.provider_time import BEIJING_UTC_OFFSET, provider_moment

INF = float("inf")
# Real provider tasks take 30 to 120 s; the sandbox's 0.5 to 6 s. Both get several buckets.
TASK_DURATION_BUCKETS = (1.0, 2.0, 3.0, 5.0, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
COMPLETION_LAG_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10, 15, 20, 30, 60, 120, 300)
POLLS_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10, 15, 20, 30, 50, 100)
HISTOGRAMS: dict[str, tuple[float, ...]] = {
    "task_duration_seconds": TASK_DURATION_BUCKETS,
    "completion_lag_seconds": COMPLETION_LAG_BUCKETS,
    "polls_per_job": POLLS_BUCKETS,
}
TERMINAL_STATUSES = ("succeeded", "failed", "canceled")
# Provider codes are untrusted text: keep label values short and plain.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")

Labels = tuple[tuple[str, str], ...]


def label_value(value: object) -> str:
    return _UNSAFE.sub("_", str(value))[:64] or "_"


def field_name(name: str, **labels: object) -> str:
    """The hash field of a counter: `name|label=value|...`, labels sorted."""
    parts = [name, *(f"{key}={label_value(value)}" for key, value in sorted(labels.items()))]
    return "|".join(parts)


def parse_field(text: str) -> tuple[str, Labels]:
    name, *parts = text.split("|")
    labels = tuple(tuple(part.split("=", 1)) for part in parts if "=" in part)
    return name, labels  # type: ignore[return-value]


def le(bound: float) -> str:
    """A bucket's upper bound as Prometheus writes it: `5.0`, `7.5`, `+Inf`."""
    return "+Inf" if bound == INF else repr(float(bound))


def bucket_of(value: float, bounds: tuple[float, ...]) -> str:
    """The `le` of the smallest bucket that holds `value`."""
    for bound in bounds:
        if value <= bound:
            return le(bound)
    return "+Inf"


def observe(name: str, value: float) -> dict[str, float]:
    """What one observation adds to a histogram's fields."""
    return {
        field_name(name, le=bucket_of(value, HISTOGRAMS[name])): 1,
        f"{name}_sum": value,
        f"{name}_count": 1,
    }


def terminal_increments(
    job: Any,
    status: str,
    changes: Mapping[str, Any],
    now: float,
    utc_offset_hours: float = BEIJING_UTC_OFFSET,
) -> dict[str, float]:
    """What a job entering the terminal `status` adds to the counters (`job` as it was read,
    `changes` what the transition writes)."""

    def current(name: str) -> Any:
        return changes[name] if name in changes else getattr(job, name, None)

    add: dict[str, float] = {field_name("jobs_total", status=status): 1}
    error = current("error") or {}
    if status == "failed":
        code = error.get("code") or "Unknown"
        add[field_name("job_errors_total", code=code)] = 1
        if current("provider_status") in ("FAILED", "UNKNOWN"):
            # The provider ended the task itself: one of its errors, as much as a refused call.
            add[field_name("provider_errors_total", code=code)] = 1
    stored = sum(1 for output in current("outputs") or [] if "uri" in output)
    if stored:
        add["images_stored_total"] = stored
    usage = current("usage") or {}
    account = job.account or "default"
    if usage.get("image_count"):
        add[field_name("images_billed_total", account=account)] = int(usage["image_count"])
    if usage.get("cost"):
        currency = usage.get("currency") or "CNY"
        add[field_name("cost_total", account=account, currency=currency)] = float(usage["cost"])
    if current("provider_task_id"):
        add.update(observe("polls_per_job", int(current("polls") or 0)))
    times = current("provider_times") or {}
    # The record says which zone its account's provider writes; older records use the default.
    offset = times.get("utc_offset", utc_offset_hours)
    offset = offset if isinstance(offset, int | float) else utc_offset_hours
    start = provider_moment(times.get("scheduled_time"), offset)
    end = provider_moment(times.get("end_time"), offset)
    if end is not None:
        if start is not None and end >= start:
            add.update(observe("task_duration_seconds", end - start))
        # Clocks differ a little between the provider and us: a lag is never negative.
        add.update(observe("completion_lag_seconds", max(now - end, 0.0)))
    return add


@dataclass(frozen=True)
class Histogram:
    """Cumulative buckets as Prometheus shows them, with their sum and count."""

    buckets: list[tuple[str, float]]
    sum: float
    count: float

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def quantile_bound(self, q: float) -> str | None:
        """The `le` of the first bucket holding at least q of the observations."""
        if not self.count:
            return None
        for bound, cumulative in self.buckets:
            if cumulative >= q * self.count:
                return bound
        return "+Inf"


@dataclass(frozen=True)
class AccountLoad:
    name: str
    in_flight: int
    concurrency: int
    paused: str | None = None  # the code that paused the account; None while it serves

    @property
    def free(self) -> int:
        """Slots admission may hand out: none on a paused account."""
        return 0 if self.paused else max(self.concurrency - self.in_flight, 0)


@dataclass(frozen=True)
class Snapshot:
    """Every number `/metrics` and `wanedit top` show, read at one moment."""

    counters: dict[str, dict[Labels, float]] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)
    accounts: list[AccountLoad] = field(default_factory=list)
    queue_depth: dict[str, int] = field(default_factory=dict)
    broker_queue: int = 0

    def counter(self, name: str, **labels: object) -> float:
        wanted = tuple((key, label_value(value)) for key, value in sorted(labels.items()))
        return self.counters.get(name, {}).get(wanted, 0.0)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        totals: dict[str, float] = {}
        for labels, value in self.counters.get(name, {}).items():
            key = dict(labels).get(label, "")
            totals[key] = totals.get(key, 0.0) + value
        return totals


def histograms_from(raw: Mapping[str, str]) -> dict[str, Histogram]:
    result = {}
    for name, bounds in HISTOGRAMS.items():
        running = 0.0
        buckets = []
        for bound in (*bounds, INF):
            running += float(raw.get(field_name(name, le=le(bound)), 0))
            buckets.append((le(bound), running))
        total = float(raw.get(f"{name}_sum", 0))
        result[name] = Histogram(buckets, total, float(raw.get(f"{name}_count", 0)))
    return result


def counters_from(raw: Mapping[str, str]) -> dict[str, dict[Labels, float]]:
    histogram_fields = tuple(HISTOGRAMS)
    counters: dict[str, dict[Labels, float]] = {}
    for text, value in raw.items():
        name, labels = parse_field(text)
        if name.startswith(histogram_fields):
            continue
        counters.setdefault(name, {})[labels] = float(value)
    return counters
