"""``wanedit sandbox`` (or ``python -m wanedit.sandbox``): serve the provider sandbox in the
foreground."""

from __future__ import annotations

import click

from wanedit.sandbox.faults import LOST_MODES
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.settings import LIST_ORDERS


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    low, sep, high = value.partition(":")
    try:
        bounds = (float(low), float(high if sep else low))
    except ValueError:
        raise click.BadParameter("use MIN:MAX seconds, e.g. 30:120") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise click.BadParameter("need 0 <= MIN <= MAX")
    return bounds


def _keys(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    # The env var holds a comma-separated list, which click would take as a single key.
    keys = [k.strip() for item in value for k in item.split(",")]
    return tuple(k for k in keys if k) or ("sk-sandbox",)


def _groups(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[tuple[str, ...], ...]:
    groups = []
    for item in value:
        keys = tuple(k.strip() for k in item.split(",") if k.strip())
        if not keys:
            raise click.BadParameter("name at least one key, e.g. sk-a,sk-b")
        groups.append(keys)
    return tuple(groups)


def _headers(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    headers = {}
    for item in value:
        name, sep, text = item.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter("use NAME:VALUE, e.g. 'Authorization: Bearer t0ken'")
        headers[name.strip()] = text.strip()
    return headers


def _modes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = [m for m in modes if m not in LOST_MODES]
    if not modes or unknown:
        raise click.BadParameter(f"use a comma-separated subset of {','.join(LOST_MODES)}")
    return modes


@click.command(name="sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, show_default=True, type=int)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    default=("sk-sandbox",),
    show_default=True,
    envvar="WANEDIT_SANDBOX_API_KEYS",
    callback=_keys,
    help="An accepted key (repeatable); a key in no --main-account is its own main account.",
)
@click.option(
    "--main-account",
    "main_accounts",
    multiple=True,
    callback=_groups,
    metavar="KEY1,KEY2,...",
    help="Keys of one main account sharing one quota and one task list (repeatable); "
    "these keys are accepted too.",
)
@click.option("--concurrency", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--submit-rate", default=5.0, show_default=True, type=float, help="Creates/s.")
@click.option("--query-rate", default=20.0, show_default=True, type=float, help="Queries/s.")
@click.option(
    "--duration",
    default="30:120",
    show_default=True,
    callback=_duration,
    help="Task processing time MIN:MAX seconds.",
)
@click.option("--result-ttl", default=86400.0, show_default=True, type=float)
@click.option("--http-error-rate", default=0.0, type=click.FloatRange(0, 1))
@click.option("--fail-rate", default=0.0, type=click.FloatRange(0, 1))
@click.option("--moderation-rate", default=0.0, type=click.FloatRange(0, 1))
@click.option("--partial-rate", default=0.0, type=click.FloatRange(0, 1))
@click.option(
    "--lost-answer-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Creates that make their task but whose answer is lost.",
)
@click.option(
    "--lost-answer-modes",
    default="504,drop",
    show_default=True,
    callback=_modes,
    help=f"How lost answers are lost, drawn uniformly: a subset of {','.join(LOST_MODES)}.",
)
@click.option(
    "--list-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Sandbox-only: seconds before a new task shows in the task list.",
)
@click.option(
    "--lost-answer-delay",
    default=35.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds a 'late' answer is held back.",
)
@click.option(
    "--utc-offset",
    default=8.0,
    show_default=True,
    type=click.FloatRange(-14, 14),
    help="The provider's zone for time strings, in hours (Beijing: 8).",
)
@click.option("--region", default="ap-southeast-1", show_default=True, help="Region in list rows.")
@click.option(
    "--list-order",
    default="newest",
    show_default=True,
    type=click.Choice(LIST_ORDERS),
    help="Order of GET /tasks rows; 'shuffled' proves a client never relies on it.",
)
@click.option(
    "--event-url",
    default=None,
    envvar="WANEDIT_SANDBOX_EVENT_URL",
    help="POST each task-end event (EventBridge's HTTP target) here; a token may go in the query.",
)
@click.option(
    "--event-header",
    "event_headers",
    multiple=True,
    callback=_headers,
    metavar="NAME:VALUE",
    help="An extra header on each event POST (repeatable), e.g. an Authorization header.",
)
@click.option(
    "--event-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Sandbox-only: seconds from a task's end to its event.",
)
@click.option(
    "--event-jitter",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Sandbox-only: up to this many more seconds, drawn uniformly.",
)
@click.option(
    "--event-loss-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Sandbox-only: events never sent.",
)
@click.option(
    "--event-dup-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Sandbox-only: events sent twice with the same id.",
)
@click.option("--seed", default=None, type=int, help="Seed for reproducible fault draws.")
@click.option("--access-log/--no-access-log", default=True, show_default=True)
def command(
    host: str,
    port: int,
    api_keys: tuple[str, ...],
    main_accounts: tuple[tuple[str, ...], ...],
    concurrency: int,
    submit_rate: float,
    query_rate: float,
    duration: tuple[float, float],
    result_ttl: float,
    http_error_rate: float,
    fail_rate: float,
    moderation_rate: float,
    partial_rate: float,
    lost_answer_rate: float,
    lost_answer_modes: tuple[str, ...],
    lost_answer_delay: float,
    list_delay: float,
    utc_offset: float,
    region: str,
    list_order: str,
    event_url: str | None,
    event_headers: dict[str, str],
    event_delay: float,
    event_jitter: float,
    event_loss_rate: float,
    event_dup_rate: float,
    seed: int | None,
    access_log: bool,
) -> None:
    """Serve a DashScope-compatible Wan 2.5 image-edit API for development and tests."""
    config = SandboxConfig(
        host=host,
        port=port,
        api_keys=api_keys,
        main_accounts=main_accounts,
        concurrency=concurrency,
        submit_rate=submit_rate,
        query_rate=query_rate,
        duration_min=duration[0],
        duration_max=duration[1],
        result_ttl=result_ttl,
        http_error_rate=http_error_rate,
        fail_rate=fail_rate,
        moderation_rate=moderation_rate,
        partial_rate=partial_rate,
        lost_answer_rate=lost_answer_rate,
        lost_answer_modes=lost_answer_modes,
        lost_answer_delay=lost_answer_delay,
        list_delay=list_delay,
        utc_offset_hours=utc_offset,
        region=region,
        list_order=list_order,
        event_url=event_url,
        event_headers=event_headers,
        event_delay=event_delay,
        event_jitter=event_jitter,
        event_loss_rate=event_loss_rate,
        event_dup_rate=event_dup_rate,
        seed=seed,
    )
    server = SandboxServer(config, access_log=access_log)
    server.bind()
    click.echo(f"sandbox serving DASHSCOPE_HTTP_BASE_URL={server.base_url}", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
