"""``wanedit sandbox`` (or ``python -m sandbox``): serve the provider sandbox in the foreground."""

from __future__ import annotations

import click

from sandbox.server import SandboxConfig, SandboxServer


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
    help="An accepted key (repeatable); each key is its own account.",
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
@click.option("--seed", default=None, type=int, help="Seed for reproducible fault draws.")
@click.option("--access-log/--no-access-log", default=True, show_default=True)
def command(
    host: str,
    port: int,
    api_keys: tuple[str, ...],
    concurrency: int,
    submit_rate: float,
    query_rate: float,
    duration: tuple[float, float],
    result_ttl: float,
    http_error_rate: float,
    fail_rate: float,
    moderation_rate: float,
    partial_rate: float,
    seed: int | None,
    access_log: bool,
) -> None:
    """Serve a DashScope-compatible Wan 2.5 image-edit API for development and tests."""
    config = SandboxConfig(
        host=host,
        port=port,
        api_keys=api_keys,
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
