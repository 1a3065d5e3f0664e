"""`wanedit provider-events`: the receiver of the provider's task-end events."""

from __future__ import annotations

import click

from wanedit.producers.cli.exits import EXIT_INVALID, die, exit_codes, until_interrupted


@click.command("provider-events")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8092, show_default=True, help="The port."
)
@exit_codes
@until_interrupted
def provider_events(host: str, port: int) -> None:
    """Receive the provider's task-end events (an EventBridge HTTP target) on POST /events;
    each one sends its job's result query at once. GET /healthz for probes."""
    from wanedit.intake.context import get_context
    from wanedit.logs import configure, settings_secrets
    from wanedit.producers import provider_events as receiver

    ctx = get_context()
    configure(ctx.settings.log_format, secrets=settings_secrets(ctx.settings))
    if ctx.settings.provider_events_token is None:
        die(
            "WANEDIT_PROVIDER_EVENTS_TOKEN is not set: the receiver needs a token, given in the "
            "EventBridge target's URL as ?token=",
            EXIT_INVALID,
        )
    server = receiver.http_server(ctx, host.strip("[]"), port)
    click.echo(f"receiving provider events on http://{host}:{server.server_port}/events", err=True)
    with server:  # closing it waits for the answers being written
        server.serve_forever()
