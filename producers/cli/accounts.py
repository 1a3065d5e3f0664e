"""`wanedit accounts`: each provider account's state, and resuming a paused one."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from wanedit.producers.cli.exits import exit_codes


def state_of(account: dict[str, Any]) -> str:
    """`serving`, or `paused: CODE: message` (with when it paused)."""
    pause = account.get("paused")
    if not pause:
        return "serving"
    return f"paused since {pause['since']}: {pause['code']}: {pause['message']}"


@click.group(name="accounts")
def accounts() -> None:
    """Provider accounts: list them, resume a paused one."""


@accounts.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@exit_codes
def list_command(as_json: bool) -> None:
    """Each account, its region and whether it serves or is paused (and why)."""
    from wanedit.producers.accounts import list_accounts
    from wanedit.producers.cli.top import plain

    rows = list_accounts()
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold")
    for name in ("account", "region", "in flight", "state"):
        table.add_column(name)
    for row in rows:
        table.add_row(
            Text(row["name"]),
            Text(row["region"]),
            f"{row['in_flight']}/{row['concurrency']}",
            Text(state_of(row)),
        )
    click.echo(plain(table))


@accounts.command(name="resume")
@click.argument("name")
@exit_codes
def resume(name: str) -> None:
    """Lift NAME's pause (fix its key, region or bill first): its waiting jobs are admitted
    again. The probe (WANEDIT_ACCOUNT_PROBE_SECONDS) lifts a pause on its own too."""
    from wanedit.producers.accounts import resume_account

    row = resume_account(name)
    if row["resumed"]:
        click.echo(f"account {name}: resumed; its waiting jobs are admitted again")
    else:
        click.echo(f"account {name}: was not paused")
