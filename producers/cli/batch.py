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


@click.command(name="batch-retry")
@click.argument("batch_id")
@click.option("--all", "all_failed", is_flag=True, help="Every failed or canceled line.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@exit_codes
def batch_retry(batch_id: str, all_failed: bool, as_json: bool) -> None:
    """Send again the lines whose latest attempt failed in a way a retry can change (with --all:
    every failed or canceled line), each as a new attempt. Safe to run twice. Exits 2 when a
    line could not be sent (its request is no longer valid); the other lines were sent."""
    from wanedit.producers.batch_ops import retry_batch

    outcome = retry_batch(batch_id, all_failed=all_failed)
    if as_json:
        click.echo(json.dumps(outcome, indent=2, sort_keys=True))
    else:
        click.echo(
            f"batch {batch_id}: {outcome['resent']} lines sent again, {outcome['skipped']} skipped"
        )
        for reason, count in outcome["skipped_by_reason"].items():
            click.echo(f"  skipped: {count} x {reason}")
        for problem in outcome["problems"]:
            click.echo(f"  line {problem['line']}: {problem['error']}")
    if outcome["problems"]:
        sys.exit(EXIT_INVALID)


@click.command(name="batch-cancel")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@exit_codes
def batch_cancel(batch_id: str, as_json: bool) -> None:
    """Enqueue no more of the batch's lines and cancel those not yet sent to the provider;
    lines in flight finish."""
    from wanedit.producers.batch_ops import cancel_batch

    counts = cancel_batch(batch_id)
    if as_json:
        click.echo(json.dumps(counts, indent=2, sort_keys=True))
        return
    click.echo(
        f"batch {batch_id}: {counts['canceled']} canceled, {counts['in_flight']} already in "
        f"flight, {counts['ended']} already ended"
    )


@click.command(name="batch-export")
@click.argument("batch_id")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Write to FILE.")
@exit_codes
def batch_export(batch_id: str, fmt: str, out: str | None) -> None:
    """Write one row per line: inputs as the manifest named them, prompt, status, outputs,
    error, cost, job id and attempts."""
    from wanedit.producers.batch_ops import export_batch

    count = export_batch(batch_id, fmt, out)
    click.echo(f"{count} rows", err=True)
