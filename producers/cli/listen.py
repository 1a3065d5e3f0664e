"""`wanedit listen`: storage event notifications in (SQS, a Redis list, HTTP), edits out."""

from __future__ import annotations

import click

from wanedit.producers.cli.exits import EXIT_INVALID, die, exit_codes, until_interrupted


@click.command()
@click.option("--sqs", "queue_url", default=None, help="An SQS queue URL with S3 notifications.")
@click.option("--redis-list", default=None, help="A Redis list in MinIO's access format.")
@click.option(
    "--redis-url", default=None, help="The Redis of --redis-list (default WANEDIT_REDIS_URL)."
)
@click.option("--http", "http_address", default=None, help="HOST:PORT for a webhook receiver.")
@click.option(
    "--once", is_flag=True, help="Handle what is there (one notification for --http), then exit."
)
@click.option(
    "--wait-seconds",
    type=click.IntRange(1, 20),
    default=20,
    show_default=True,
    help="Long-poll wait for --sqs and --redis-list.",
)
@exit_codes
@until_interrupted
def listen(
    queue_url: str | None,
    redis_list: str | None,
    redis_url: str | None,
    http_address: str | None,
    once: bool,
    wait_seconds: int,
) -> None:
    """Turn storage event notifications into edits (rules: WANEDIT_LISTEN_RULES)."""
    from wanedit.intake.context import get_context
    from wanedit.logs import configure, settings_secrets
    from wanedit.producers import listen as listener

    if sum(x is not None for x in (queue_url, redis_list, http_address)) != 1:
        die("give one of --sqs QUEUE_URL, --redis-list KEY or --http HOST:PORT", EXIT_INVALID)
    ctx = get_context()
    configure(ctx.settings.log_format, secrets=settings_secrets(ctx.settings))
    if not ctx.settings.listen_rules:
        die(
            "no listen rules (WANEDIT_LISTEN_RULES, WANEDIT_RULES_FILE): no upload would become "
            "an edit",
            EXIT_INVALID,
        )
    if queue_url is not None:
        from wanedit.config.clients import aws_session

        sqs = aws_session(ctx.settings).client("sqs")
        made = listener.listen_sqs(ctx, sqs, queue_url, once=once, wait_seconds=wait_seconds)
    elif redis_list is not None:
        from wanedit.config.clients import make_redis

        settings = ctx.settings
        if redis_url:
            settings = settings.model_copy(update={"redis_url": redis_url})
        made = listener.listen_redis_list(
            ctx, make_redis(settings), redis_list, once=once, wait_seconds=wait_seconds
        )
    else:
        assert http_address is not None
        host, _, port = http_address.rpartition(":")
        if not host or not port.isdigit():
            die(f"--http {http_address!r}: give HOST:PORT", EXIT_INVALID)
        import threading

        made, handled = 0, threading.Event()
        lock = threading.Lock()

        def count(outcome: listener.Outcome) -> None:  # called from the connections' threads
            nonlocal made
            with lock:
                made += len(outcome.jobs)
            handled.set()

        server = listener.http_server(ctx, host.strip("[]"), int(port), count)
        with server:  # closing it waits for the answers being written
            if not once:
                server.serve_forever()
            # --once: until one notification is handled (refused callers do not count).
            server.timeout = 0.2
            while not handled.is_set():
                server.handle_request()
    click.echo(f"{made} jobs enqueued")
