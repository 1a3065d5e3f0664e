"""`wanedit top`: the numbers of `/metrics`, read from Redis and laid out with rich. Pure."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from wanedit.metrics import Histogram, Snapshot

# The widest label ("provider errors"): every section's values start in the same column.
LABEL_WIDTH = 15
# Piped or --once, lines are never wrapped: scripts read them whole.
PLAIN_WIDTH = 200


def _num(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _histogram(histogram: Histogram | None, unit: str) -> str:
    if histogram is None or not histogram.count:
        return "-"
    mean = histogram.mean or 0.0
    return (
        f"n={_num(histogram.count)}  mean {mean:.1f}{unit}  "
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


def _rows(*rows: tuple[str, str]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(min_width=LABEL_WIDTH, style="bold")
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, Text(value))  # Text: provider codes are not rich markup
    return grid


def _accounts(snapshot: Snapshot) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("account", min_width=LABEL_WIDTH)
    table.add_column("in flight", justify="right")
    table.add_column("free", justify="right", min_width=4)
    paused = any(account.paused for account in snapshot.accounts)
    if paused:
        table.add_column("state")
    for account in snapshot.accounts:
        cells: list[RenderableType] = [
            Text(account.name),
            f"{account.in_flight}/{account.concurrency}",
            str(account.free),
        ]
        if paused:
            state = f"PAUSED {account.paused}" if account.paused else "serving"
            cells.append(Text(state, style="bold red" if account.paused else ""))
        table.add_row(*cells)
    return table


def costs_today(accounts: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Today's cost by currency, summed from the accounts of `quota()`: the one source `top`
    and `quota` both show (images counted today, UTC, times each account's price)."""
    costs: dict[str, float] = {}
    for account in accounts:
        currency = str(account["currency"])
        costs[currency] = round(costs.get(currency, 0.0) + float(account["cost_today"]), 6)
    return costs


def cost_text(costs: Mapping[str, float]) -> str:
    return "  ".join(f"{value:.2f} {currency}" for currency, value in sorted(costs.items()))


def screen(
    snapshot: Snapshot,
    now: float,
    redis_up: bool = True,
    cost_today: Mapping[str, float] | None = None,
) -> RenderableType:
    """The screen, from one snapshot (and today's cost, see `costs_today`): the same numbers
    give the same screen."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    title = Text(f"wanedit top  {stamp}", style="bold")
    if not redis_up:
        return Group(title, Text("Redis does not answer", style="bold red"))
    depth = snapshot.queue_depth
    statuses = snapshot.by_label("jobs_total", "status")
    stored = _num(snapshot.counter("images_stored_total"))
    billed = _num(sum(snapshot.by_label("images_billed_total", "account").values()))
    cost = cost_text(cost_today or {})
    hist = snapshot.histograms
    return Group(
        title,
        Text(),
        _accounts(snapshot),
        _rows(
            (
                "backlog",
                f"interactive {depth.get('interactive', 0)}  batch {depth.get('batch', 0)}"
                f"  (broker queue {snapshot.broker_queue})",
            )
        ),
        Text(),
        _rows(
            (
                "jobs ended",
                "  ".join(
                    f"{status} {_num(statuses.get(status, 0))}"
                    for status in ("succeeded", "failed", "canceled")
                ),
            ),
            ("job errors", _by_code(snapshot, "job_errors_total")),
            ("provider errors", _by_code(snapshot, "provider_errors_total")),
            ("images", f"{stored} stored  {billed} billed"),
            ("cost today", cost or "0"),
        ),
        Text(),
        _rows(
            ("task duration", _histogram(hist.get("task_duration_seconds"), " s")),
            ("completion lag", _histogram(hist.get("completion_lag_seconds"), " s")),
            ("polls per job", _histogram(hist.get("polls_per_job"), "")),
        ),
    )


def plain(renderable: RenderableType, width: int = PLAIN_WIDTH) -> str:
    """A renderable as plain text: no colours or control codes, no trailing spaces."""
    console = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False
    )
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.splitlines())


def render(
    snapshot: Snapshot,
    now: float,
    redis_up: bool = True,
    cost_today: Mapping[str, float] | None = None,
) -> str:
    """The screen as plain text, for --once, pipes and tests."""
    return plain(screen(snapshot, now, redis_up, cost_today))
