"""`wanedit top`: the numbers of `/metrics`, read from Redis and shown as plain text."""

from __future__ import annotations

from datetime import UTC, datetime

from wanedit.metrics import Histogram, Snapshot


def _num(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _histogram(label: str, histogram: Histogram | None, unit: str) -> str:
    if histogram is None or not histogram.count:
        return f"{label:<17}-"
    mean = histogram.mean or 0.0
    return (
        f"{label:<17}n={_num(histogram.count)}  mean {mean:.1f}{unit}  "
        f"p50 <= {_bound(histogram.quantile_bound(0.5))}{unit}  "
        f"p90 <= {_bound(histogram.quantile_bound(0.9))}{unit}"
    )


def _bound(le: str | None) -> str:
    if le is None or le == "+Inf":
        return "inf"
    return _num(float(le))


def _by_code(snapshot: Snapshot, name: str) -> str:
    codes = snapshot.by_label(name, "code")
    if not codes:
        return "none"
    ranked = sorted(codes.items(), key=lambda item: (-item[1], item[0]))
    return "  ".join(f"{code} {_num(count)}" for code, count in ranked)


def render(snapshot: Snapshot, now: float, redis_up: bool = True) -> str:
    """The screen, from one snapshot. Pure: the same snapshot gives the same text."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"wanedit top  {stamp}"]
    if not redis_up:
        return "\n".join([*lines, "Redis does not answer"])
    lines.append("")
    lines.append(f"{'account':<17}{'in flight':>9}  {'free':>4}")
    for account in snapshot.accounts:
        lines.append(
            f"{account.name:<17}{f'{account.in_flight}/{account.concurrency}':>9}  "
            f"{account.free:>4}"
        )
    depth = snapshot.queue_depth
    lines.append(
        f"{'backlog':<17}interactive {depth.get('interactive', 0)}  batch {depth.get('batch', 0)}"
        f"  (broker queue {snapshot.broker_queue})"
    )
    lines.append("")
    statuses = snapshot.by_label("jobs_total", "status")
    lines.append(
        f"{'jobs ended':<17}"
        + "  ".join(
            f"{status} {_num(statuses.get(status, 0))}"
            for status in ("succeeded", "failed", "canceled")
        )
    )
    lines.append(f"{'job errors':<17}{_by_code(snapshot, 'job_errors_total')}")
    lines.append(f"{'provider errors':<17}{_by_code(snapshot, 'provider_errors_total')}")
    stored = _num(snapshot.counter("images_stored_total"))
    billed = _num(sum(snapshot.by_label("images_billed_total", "account").values()))
    lines.append(f"{'images':<17}{stored} stored  {billed} billed")
    costs: dict[str, float] = {}
    for labels, value in snapshot.counters.get("cost_total", {}).items():
        currency = dict(labels).get("currency", "")
        costs[currency] = costs.get(currency, 0.0) + value
    cost = "  ".join(f"{value:.2f} {currency}" for currency, value in sorted(costs.items()))
    lines.append(f"{'cost':<17}{cost or '0'}")
    lines.append("")
    hist = snapshot.histograms
    lines.append(_histogram("task duration", hist.get("task_duration_seconds"), " s"))
    lines.append(_histogram("completion lag", hist.get("completion_lag_seconds"), " s"))
    lines.append(_histogram("polls per job", hist.get("polls_per_job"), ""))
    return "\n".join(lines)
