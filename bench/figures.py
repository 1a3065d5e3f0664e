"""The figures of one run and their targets, computed from its measurements only. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

from bench.common import RunResult, Workload, percentile

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
    )


@dataclass(frozen=True)
class Target:
    name: str
    rule: str
    value: str
    passed: bool | None  # None: not measurable in this run


def targets(f: Figures) -> list[Target]:
    """The targets, with thresholds from this run's own mean task duration."""
    mean = f.mean_task
    lat_limit = 1.5 * mean + 1.0 if mean else None
    lag_limit = 0.1 * mean if mean else None
    return [
        Target(
            "quota utilization",
            ">= 0.95",
            _num(f.utilization, 3),
            None if f.utilization is None else f.utilization >= 0.95,
        ),
        Target(
            "interactive latency p95",
            f"<= 1.5 x mean task + 1 s = {_num(lat_limit, 2)} s",
            _num(f.interactive_p95, 2) + " s",
            None
            if f.interactive_p95 is None or lat_limit is None
            else f.interactive_p95 <= lat_limit,
        ),
        Target("polls per edit", "<= 4", _num(f.polls_per_edit, 2), f.polls_per_edit <= 4),
        Target(
            "completion lag p95",
            f"<= 10% of mean task = {_num(lag_limit, 2)} s",
            _num(f.lag_p95, 2) + " s",
            None if f.lag_p95 is None or lag_limit is None else f.lag_p95 <= lag_limit,
        ),
        Target(
            "failures surfaced from throttling",
            "= 0",
            str(f.throttling_failures),
            f.throttling_failures == 0,
        ),
    ]


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
