"""Batches: a manifest or an S3 prefix becomes one edit per line; a batch's progress."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from wanedit.producers.cli.exits import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_UNAVAILABLE,
    die,
    exit_codes,
)


@click.command()
@click.argument("manifest", required=False)
@click.option("--prefix", default=None, help="Instead of a manifest: every image under s3://...")
@click.option("--prompt", default=None, help="With --prefix: the edit instruction for each image.")
@click.option("--n", "n", type=int, default=None, help="With --prefix: images to make (1 to 4).")
@click.option("--size", default=None, help="With --prefix: output size W*H.")
@click.option("--seed", type=int, default=None, help="With --prefix: 0 to 2147483647.")
@click.option("--output", default=None, help="Destination s3://bucket/prefix/ for the batch.")
@click.option("--batch-id", default=None, help="Name the batch (default: from place and content).")
@click.option("--wait", is_flag=True, help="Wait for every job, then write the summary.")
@click.option("--timeout", type=float, default=None, help="With --wait: give up after S seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the batch status as JSON.")
@exit_codes
def batch(
    manifest: str | None,
    prefix: str | None,
    prompt: str | None,
    n: int | None,
    size: str | None,
    seed: int | None,
    output: str | None,
    batch_id: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Enqueue one edit per manifest line (JSONL or CSV, a path or s3://), or per image under
    --prefix. Re-running the same manifest enqueues nothing twice."""
    from wanedit.intake.batch import Source, run_batch, wait_for_batch
    from wanedit.producers.summary import write_summary

    if (manifest is None) == (prefix is None):
        die("give either a MANIFEST or --prefix s3://bucket/in/", EXIT_INVALID)
    if prefix is not None and not prompt:
        die("--prefix needs --prompt", EXIT_INVALID)
    if batch_id is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", batch_id):
        die(f"--batch-id {batch_id[:70]!r}: 1 to 64 letters, digits, '_', '.', '-'", EXIT_INVALID)
    if prefix is not None:
        fields = {"prompt": prompt, "n": n, "size": size, "seed": seed}
        source = Source(prefix, {k: v for k, v in fields.items() if v is not None})
    else:
        source = Source(str(manifest))
    lines = 0

    def progress(number: int) -> None:
        nonlocal lines
        lines += 1
        if not as_json and lines % 100 == 0:
            click.echo(f"\rlines read: {lines}", nl=False, err=True)

    from wanedit.s3errors import S3_EXCEPTIONS, classify_s3_error  # botocore: only for a batch

    try:
        status = run_batch(source, output=output, batch_id=batch_id, on_line=progress)
    # What is wrong with the manifest itself, named by where it was read from.
    except FileNotFoundError as exc:
        die(f"manifest {manifest!r}: {exc.strerror}", EXIT_INVALID)
    except ValueError as exc:
        die(f"{manifest or prefix}: {exc}", EXIT_INVALID)
    except S3_EXCEPTIONS as exc:
        failure = classify_s3_error(exc)
        code = EXIT_INVALID if failure.request_fault else EXIT_UNAVAILABLE
        die(f"S3: {failure.describe(str(manifest or prefix))}", code)
    if not as_json:
        click.echo(f"\rlines read: {lines}", err=True)
        click.echo(status["id"])
    if wait:
        with click.progressbar(
            length=status["enqueued"], label="jobs ended", file=sys.stderr
        ) as bar:
            shown = 0

            def advance(current: dict[str, Any]) -> None:
                nonlocal shown
                ended = current["done"] + current["failed"]
                bar.update(ended - shown)
                shown = ended

            status = wait_for_batch(status["id"], timeout, on_poll=advance)
        status["summary"] = write_summary(status["id"])
    print_batch(status, as_json)
    if status["invalid"] or (wait and (status["failed"] or status["running"])):
        sys.exit(EXIT_FAILED)


@click.command(name="batch-status")
@click.argument("batch_id")
@click.option("--summary", is_flag=True, help="Write summary.json and summary.html to S3.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@exit_codes
def batch_status(batch_id: str, summary: bool, as_json: bool) -> None:
    """Show a batch: enqueued, done, failed, invalid lines and an ETA."""
    from wanedit.intake.batch import batch_status as read_status
    from wanedit.producers.summary import write_summary

    status = read_status(batch_id)
    if summary:
        status["summary"] = write_summary(batch_id)
    print_batch(status, as_json)


def print_batch(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status, indent=2, sort_keys=True))
        return
    eta = status["eta_seconds"]
    click.echo(
        f"batch {status['id']}: {status['total']} lines"
        f"{'' if status['read_all'] else ' read so far'}, {status['enqueued']} enqueued, "
        f"{status['done']} done, {status['failed']} failed, {status['running']} running, "
        f"{status['invalid']} invalid; ETA {'unknown' if eta is None else f'{eta:g} s'}"
    )
    if status.get("error"):
        click.echo(f"  stopped: {status['error']}")
    for line in status["invalid_lines"]:
        click.echo(f"  line {line['line']}: {line['error']}")
    for code, count in sorted(status["failures_by_code"].items()):
        click.echo(f"  failed: {count} x {code}")
    for name, uri in sorted((status.get("summary") or {}).items()):
        click.echo(f"  {name}: {uri}")
