"""`wanedit url`: fresh presigned URLs of a job's results, one a line."""

from __future__ import annotations

import click

from wanedit.producers.cli.exits import EXIT_INVALID, die, exit_codes, status_exit


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
    """Print a presigned HTTPS GET URL for each stored output of a job, one a line. A job with
    no stored output exits by how it stands: 1 failed, 5 canceled, 6 not ended yet."""
    from wanedit.producers.urls import result_urls

    try:
        urls = result_urls(job_id, ttl)
    except ValueError as exc:
        die(str(exc), EXIT_INVALID)
    if not urls:
        # No output to sign: exit by how the job stands (1 failed, 5 canceled, 6 not ended).
        from wanedit.producers.api import get_job

        status = get_job(job_id)["status"]
        die(
            f"job {job_id} is {status} and has no stored output: nothing to sign",
            status_exit(status),
        )
    for line in urls:
        click.echo(line)
