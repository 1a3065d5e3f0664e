"""`wanedit url`: fresh presigned URLs of a job's results, one a line."""

from __future__ import annotations

import click

from wanedit.producers.cli.exits import EXIT_FAILED, EXIT_INVALID, die, exit_codes


@click.command()
@click.argument("job_id")
@click.option(
    "--ttl",
    type=int,
    default=None,
    help="Seconds the URLs stay valid, 1 to 604800 (default: WANEDIT_RESULT_URL_TTL, else 3600).",
)
@exit_codes
def url(job_id: str, ttl: int | None) -> None:
    """Print a presigned HTTPS GET URL for each stored output of a job, one a line."""
    from wanedit.producers.urls import result_urls

    try:
        urls = result_urls(job_id, ttl)
    except ValueError as exc:
        die(str(exc), EXIT_INVALID)
    if not urls:
        die(f"job {job_id} has no stored output (yet): nothing to sign", EXIT_FAILED)
    for line in urls:
        click.echo(line)
