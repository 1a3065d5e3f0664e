"""The figures of one run and their targets, computed from its measurements only. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

from bench.common import RunResult, TaskSpan, Workload, percentile
from bench.designs import Design

THROTTLING = "Throttling"


@dataclass(frozen=True)
class Figures:
    edits: int
    succeeded: int
    failed: int
    unfinished: int
    window: float  # first enqueue -> last completion event, seconds
    mean_task: float | None  # provider end_time - scheduled_time
    capacity: float | None  # C x accounts / mean task duration, edits per second
    throughput: float  # succeeded edits per second over the window
    utilization: float | None
    interactive_p50: float | None
    interactive_p95: float | None
    interactive_p95_ratio: float | None  # p95 / mean task duration
    queries: int
    polls_per_edit: float
    lag_p50: float | None
    lag_p95: float | None
    throttled: int
    throttling_failures: int
    cpu_per_edit: float
    peak_rss_mib: float
    max_running: dict[str, int]
    busy_window: float | None = None  # first create -> last create at the provider, seconds
    busy_utilization: float | None = None  # RUNNING slot-seconds / (C x accounts x busy_window)
    task_p95: float | None = None  # p95 of the provider's task durations, every edit
    interactive_task_p95: float | None = None  # the same over the interactive edits only
    interactive_wait_p95: float | None = None  # interactive: submit -> provider scheduled_time
    events: dict[str, int] | None = None  # the sandbox's event counters (events designs)
    event_delay: float | None = None
    idle_slot_seconds: float | None = None  # capacity - busy, while the backlog waits
    event_send_p95: float | None = None  # task end to the POST, as the sandbox sent them
    missed_events: int | None = None  # tasks of ours whose event never reached the receiver
    lag_missed_mean: float | None = None  # completion lag of those tasks
    lag_delivered_mean: float | None = None  # completion lag of the others


@dataclass(frozen=True)
class Busy:
    """Slot use while our backlog still had work waiting."""

    start: float
    end: float
    busy: float  # provider RUNNING slot-seconds inside [start, end]
    capacity: float  # slots x (end - start)

    @property
    def utilization(self) -> float | None:
        return self.busy / self.capacity if self.capacity > 0 else None


def busy_share(spans: list[TaskSpan], slots: int) -> Busy | None:
    """RUNNING slot-seconds from the first create to the last one, over the slots' capacity then.

    Until the last create, an edit still waited in our backlog, so every idle slot could have
    been used; after it, nothing was left to start (the tail) and no design can fill a slot.
    A task still running at the end counts up to the window's end.
    """
    if not spans:
        return None
    start = min(s.created for s in spans)
    end = max(s.created for s in spans)
    busy = 0.0
    for span in spans:
        if span.started is None:
            continue
        stop = end if span.ended is None else min(span.ended, end)
        busy += max(0.0, stop - max(span.started, start))
    return Busy(start, end, busy, slots * (end - start))


def compute(run: RunResult, workload: Workload) -> Figures:
    edits = run.edits
    succeeded = [e for e in edits if e.status == "succeeded"]
    failed = [e for e in edits if e.status == "failed"]
    ended = [e for e in edits if e.event_at is not None]
    durations = [d for e in ended if (d := e.task_duration) is not None]
    mean_task = fmean(durations) if durations else None
    capacity = workload.concurrency * run.accounts / mean_task if mean_task else None
    window = max(run.finished_at - run.started_at, 1e-9)
    throughput = len(succeeded) / window
    latencies = [x for e in edits if e.kind == "interactive" and (x := e.latency) is not None]
    p95 = percentile(latencies, 95)
    lags = [x for e in succeeded if (x := e.lag) is not None]
    stats = run.sandbox_stats
    # A list call answers the status of many tasks and spends the same query quota.
    queries = int(stats.get("queries", 0)) + int(stats.get("lists", 0))
    peaks = stats.get("max_running_by_account") or {}
    share = busy_share(run.tasks, workload.concurrency * run.accounts)
    interactive_durations = [
        d for e in ended if e.kind == "interactive" and (d := e.task_duration) is not None
    ]
    waits = [
        e.provider_scheduled - e.submitted_at
        for e in ended
        if e.kind == "interactive" and e.provider_scheduled is not None
    ]
    events = {k: int(v) for k, v in stats.items() if k.startswith("events_")}
    missed = missed_events(run)
    lags_missed = [x for e in succeeded if e.task_id in missed and (x := e.lag) is not None]
    lags_delivered = [x for e in succeeded if e.task_id not in missed and (x := e.lag) is not None]
    sends = [
        r.sent_at - r.ended_at for r in run.event_sends if r.sent_at is not None and not r.duplicate
    ]
    on = run.event_delay is not None
    return Figures(
        edits=len(edits),
        succeeded=len(succeeded),
        failed=len(failed),
        unfinished=len(edits) - len(ended),
        window=window,
        mean_task=mean_task,
        capacity=capacity,
        throughput=throughput,
        utilization=throughput / capacity if capacity else None,
        interactive_p50=percentile(latencies, 50),
        interactive_p95=p95,
        interactive_p95_ratio=p95 / mean_task if p95 is not None and mean_task else None,
        queries=queries,
        polls_per_edit=queries / max(len(edits), 1),
        lag_p50=percentile(lags, 50),
        lag_p95=percentile(lags, 95),
        throttled=int(stats.get("throttled", 0)),
        throttling_failures=sum(1 for e in failed if (e.error_code or "").startswith(THROTTLING)),
        cpu_per_edit=run.cpu_seconds / max(len(edits), 1),
        peak_rss_mib=run.peak_rss / 2**20,
        max_running={run.account_names.get(k, k): int(v) for k, v in peaks.items()},
        busy_window=None if share is None else share.end - share.start,
        busy_utilization=None if share is None else share.utilization,
        task_p95=percentile(durations, 95),
        interactive_task_p95=percentile(interactive_durations, 95),
        interactive_wait_p95=percentile(waits, 95),
        events=events if on else None,
        event_delay=run.event_delay,
        idle_slot_seconds=None if share is None else share.capacity - share.busy,
        event_send_p95=percentile(sends, 95),
        missed_events=len(missed & {e.task_id for e in edits}) if on else None,
        lag_missed_mean=fmean(lags_missed) if lags_missed else None,
        lag_delivered_mean=fmean(lags_delivered) if on and lags_delivered else None,
    )


def missed_events(run: RunResult) -> set[str | None]:
    """Tasks none of whose event copies reached the receiver (dropped, or given up on)."""
    reached = {r.task_id for r in run.event_sends if r.status == "sent"}
    return {r.task_id for r in run.event_sends if r.status in ("lost", "failed")} - reached


@dataclass(frozen=True)
class Target:
    name: str
    rule: str
    value: str
    passed: bool | None  # None: not measurable in this run
    missed_by: str = ""  # when missed: how far from the limit
    beside: str = ""  # a figure that bounds this one from below, when there is one


def _at_least(name: str, value: float | None, limit: float, digits: int, unit: str = "") -> Target:
    rule = f">= {limit:g}{unit}"
    if value is None:
        return Target(name, rule, "n/a", None)
    passed = value >= limit
    by = "" if passed else f"{limit - value:.{digits}f}{unit} below"
    return Target(name, rule, f"{value:.{digits}f}{unit}", passed, by)


def _at_most(
    name: str, value: float | None, limit: float | None, digits: int, rule: str, unit: str = ""
) -> Target:
    if value is None or limit is None:
        return Target(name, rule, "n/a" if value is None else f"{value:.{digits}f}{unit}", None)
    passed = value <= limit
    by = "" if passed else f"{value - limit:.{digits}f}{unit} over"
    return Target(name, rule, f"{value:.{digits}f}{unit}", passed, by)


def targets(f: Figures) -> list[Target]:
    """The targets of the design that looks, with thresholds from this run's mean task."""
    mean = f.mean_task
    lat_limit = 1.5 * mean + 1.0 if mean else None
    lag_limit = 0.1 * mean if mean else None
    return [
        _at_least("quota utilization", f.utilization, 0.95, 3),
        _at_most(
            "interactive latency p95",
            f.interactive_p95,
            lat_limit,
            2,
            f"<= 1.5 x mean task + 1 s = {_num(lat_limit, 2)} s",
            " s",
        ),
        _at_most("polls per edit", f.polls_per_edit, 4.0, 2, "<= 4"),
        _at_most(
            "completion lag p95",
            f.lag_p95,
            lag_limit,
            2,
            f"<= 10% of mean task = {_num(lag_limit, 2)} s",
            " s",
        ),
        _at_most("failures surfaced from throttling", f.throttling_failures, 0, 0, "= 0"),
    ]


EVENTS_UTILIZATION = 0.98
LOSSY_UTILIZATION = 0.95


def event_targets(f: Figures, *, lossy: bool) -> list[Target]:
    """The targets with the provider's events on; ``lossy``: some events are dropped, so only
    that no job is lost and that the slots stay busy are asked."""
    mean = f.mean_task
    utilization = _at_least(
        "utilization while the backlog waits",
        f.busy_utilization,
        LOSSY_UTILIZATION if lossy else EVENTS_UTILIZATION,
        3,
    )
    throttling = _at_most("failures from throttling", f.throttling_failures, 0, 0, "= 0")
    if lossy:
        lost = _at_most("jobs lost (no completion event)", f.unfinished, 0, 0, "= 0")
        return [lost, utilization, throttling]
    lat_limit = 1.2 * mean + 1.0 if mean else None
    latency = _at_most(
        "interactive latency p95",
        f.interactive_p95,
        lat_limit,
        2,
        f"<= 1.2 x mean task + 1 s = {_num(lat_limit, 2)} s",
        " s",
    )
    if f.interactive_task_p95 is not None:
        latency = Target(
            latency.name,
            latency.rule,
            latency.value,
            latency.passed,
            latency.missed_by,
            f"p95 of those edits' own task durations: {f.interactive_task_p95:.2f} s",
        )
    return [
        utilization,
        _at_most("provider queries per edit", f.polls_per_edit, 1.3, 2, "<= 1.3"),
        _at_most("completion lag p95", f.lag_p95, 1.0, 2, "<= 1 s", " s"),
        latency,
        throttling,
    ]


def design_targets(design: Design, f: Figures) -> list[Target]:
    """The targets that apply to a design; none for the naive one."""
    if design.events:
        return event_targets(f, lossy=design.event_loss_rate > 0)
    if design.runner == "wanedit":
        return targets(f)
    return []


def verdict(t: Target) -> str:
    if t.passed is None:
        return "n/a"
    return "PASS" if t.passed else f"MISS ({t.missed_by})"


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
