"""Operating the cluster: provider quota, the daily cap, and `top`'s live numbers."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from wanedit.producers.cli.exits import (
    EXIT_INVALID,
    EXIT_UNAVAILABLE,
    die,
    exit_codes,
    until_interrupted,
)


def quota_table(data: dict[str, Any]) -> Table:
    """The accounts of `quota()`, one row each."""
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    table.add_column("account")
    for name in ("in flight", "submits/s", "queries/s", "images today", "cost today"):
        table.add_column(name, justify="right")
    paused = any(a.get("paused") for a in data["accounts"])
    if paused:
        table.add_column("state")
    for a in data["accounts"]:
        state = ["paused" if a.get("paused") else "serving"] if paused else []
        table.add_row(
            Text(a["name"]),
            f"{a['in_flight']}/{a['concurrency']}",
            f"{a['submit_rate']:g}",
            f"{a['query_rate']:g}",
            str(a["images_today"]),
            f"{a['cost_today']:.2f} {a['currency']}",
            *state,
        )
    return table


def _print_quota(data: dict[str, Any], as_json: bool) -> None:
    from wanedit.producers.cli.top import plain

    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(plain(quota_table(data)))
    for account in data["accounts"]:
        if pause := account.get("paused"):
            click.echo(
                f"account {account['name']}: PAUSED since {pause['since']}: {pause['code']}: "
                f"{pause['message']} (wanedit accounts resume {account['name']})"
            )
    cap = data["daily_image_cap"]
    click.echo(
        f"today: {data['images_today']} images"
        + (f" of a cap of {cap}" if cap else " (no cap)")
        + ("  PAUSED by the cap" if data["paused"] else "")
    )
    waiting = data["waiting"]
    click.echo(f"waiting: {waiting['interactive']} interactive, {waiting['batch']} batch")


@click.command(name="quota")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@exit_codes
def quota(as_json: bool) -> None:
    """Provider accounts: slots in use, today's images and cost, the cap, the backlog."""
    from wanedit.producers.api import quota as read_quota

    _print_quota(read_quota(), as_json)


@click.command(name="cap")
@click.option("--images", type=click.IntRange(min=0), default=None, help="Images per day; 0: none.")
@click.option("--reset", is_flag=True, help="Go back to WANEDIT_DAILY_IMAGE_CAP.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@exit_codes
def cap(images: int | None, reset: bool, as_json: bool) -> None:
    """Change the daily image cap for all workers at once (it takes effect immediately)."""
    from wanedit.producers.api import set_daily_cap

    if (images is None) == (not reset):
        die("give either --images N or --reset", EXIT_INVALID)
    _print_quota(set_daily_cap(None if reset else images), as_json)


@click.command(name="top")
@click.option(
    "--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True, help="Seconds."
)
@click.option("--once", is_flag=True, help="Print the numbers once and exit (for scripts).")
@exit_codes
@until_interrupted
def top(interval: float, once: bool) -> None:
    """Live numbers of the whole cluster, as /metrics has them: slots, backlog, jobs, errors,
    images, cost, task durations. Refreshes in place; Ctrl-C quits."""
    import redis
    from rich.console import Console, RenderableType
    from rich.live import Live

    from wanedit.config.clients import make_admission, make_metrics, make_redis, read_snapshot
    from wanedit.config.settings import get_settings
    from wanedit.errors import BackendUnavailable
    from wanedit.metrics import Snapshot
    from wanedit.producers.api import quota as read_quota
    from wanedit.producers.cli.top import costs_today, plain, screen

    settings = get_settings()
    client = make_redis(settings)
    metrics, admission = make_metrics(settings, client), make_admission(settings, client)

    def frame() -> RenderableType:
        try:
            snapshot = read_snapshot(settings, metrics, admission)
            # Today's cost as `wanedit quota` reads it: one source for both.
            cost = costs_today(read_quota()["accounts"])
            return screen(snapshot, time.time(), cost_today=cost)
        except (redis.RedisError, BackendUnavailable) as exc:
            if once:
                die(f"Redis cannot be reached: {exc.__class__.__name__}", EXIT_UNAVAILABLE)
            return screen(Snapshot(), time.time(), redis_up=False)

    console = Console(highlight=False)
    if once or not console.is_terminal:
        # Piped (or once): plain frames, one after another, for scripts and logs.
        while True:
            text = plain(frame())
            if once:
                click.echo(text)
                return
            click.echo(text + "\n")
            time.sleep(interval)
    # On a terminal each frame replaces the last.
    with Live(frame(), console=console, auto_refresh=False, screen=False) as live:
        while True:
            time.sleep(interval)
            live.update(frame(), refresh=True)
