"""One job at a time: submit, status, cancel; the completion events; the request's schema."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import click

from wanedit.producers.cli.exits import (
    EXIT_INVALID,
    EXIT_NOT_ENDED,
    die,
    exit_codes,
    exit_table_text,
    status_exit,
    until_interrupted,
)

ENTRY_ID = re.compile(r"\d+(-\d+)?")


def print_job(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(job, indent=2, sort_keys=True))
        return
    click.echo(f"{job['id']}  {job['status']}  provider_task={job['provider_task_id'] or '-'}")
    for output in job["outputs"]:
        if "uri" in output:
            click.echo(f"  [{output['index']}] {output['uri']}")
            if output.get("url"):  # with WANEDIT_RESULT_URL_TTL set
                click.echo(f"      {output['url']}")
        else:
            error = output["error"]
            click.echo(f"  [{output['index']}] failed: {error['code']}: {error['message']}")
    if job["error"]:
        click.echo(f"  error: {job['error']['code']}: {job['error']['message']}")
    if job.get("waiting_for"):
        click.echo(f"  waiting for: {job['waiting_for']}")
    if job.get("cancel_refused"):
        click.echo(f"  note: {job['cancel_refused']}")
    elif job.get("cancel_requested") and job["status"] in ("queued", "submitted", "running"):
        click.echo("  note: cancel requested; it is settled once the provider answers")


@click.command()
@click.option("--prompt", required=True, help="The edit instruction (1 to 2000 characters).")
@click.option(
    "--image",
    "images",
    multiple=True,
    required=True,
    help="https://, s3://, data: or a local path; 1 to 3.",
)
@click.option("--negative-prompt", default=None, help="What to avoid (at most 500 characters).")
@click.option(
    "-n", "--n", "n", type=int, default=1, show_default=True, help="Images to make (1 to 4)."
)
@click.option("--size", default=None, help="Output size W*H, e.g. 1280*1280.")
@click.option("--seed", type=int, default=None, help="0 to 2147483647.")
@click.option("--prompt-extend/--no-prompt-extend", default=True, show_default=True)
@click.option("--watermark/--no-watermark", default=False, show_default=True)
@click.option(
    "--output", default=None, help="Destination s3://bucket/prefix/ (default WANEDIT_OUTPUT_URI)."
)
@click.option(
    "--idempotency-key", default=None, help="The same key within 24 h returns the same job."
)
@click.option(
    "--priority",
    type=click.Choice(["interactive", "batch"]),
    default="interactive",
    show_default=True,
    help="interactive: a person waits; batch: bulk work, served after interactive edits.",
)
@click.option("--metadata", default=None, help="A JSON object returned in the completion event.")
@click.option(
    "--callback-url", default=None, help="https:// URL the signed completion webhook goes to."
)
@click.option(
    "--webhook-url",
    default=None,
    help="The same as --callback-url (give either; both must agree).",
)
@click.option("--on-complete", default=None, help="Celery task name sent the completion event.")
@click.option(
    "--on-complete-queue", default=None, help="Queue for --on-complete (default: celery)."
)
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for the job to end and print it; each status change is shown on stderr as it "
    "happens, with the seconds since the job was queued.",
)
@click.option("--timeout", type=float, default=None, help="With --wait: give up after S seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
@exit_codes
def submit(
    prompt: str,
    images: tuple[str, ...],
    negative_prompt: str | None,
    n: int,
    size: str | None,
    seed: int | None,
    prompt_extend: bool,
    watermark: bool,
    output: str | None,
    idempotency_key: str | None,
    priority: str,
    metadata: str | None,
    callback_url: str | None,
    webhook_url: str | None,
    on_complete: str | None,
    on_complete_queue: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Enqueue one edit; print its job id (or, with --wait, the finished job).

    With --wait it exits as `wanedit status` does (0 succeeded, 1 failed, 5 canceled, 6 not
    ended when --timeout passed); see `wanedit --help` for every exit status."""
    from wanedit.intake import submit_edit
    from wanedit.producers.api import get_job
    from wanedit.producers.cli.progress import wait_showing

    fields: dict[str, Any] = {
        "prompt": prompt,
        "images": list(images),
        "negative_prompt": negative_prompt,
        "n": n,
        "size": size,
        "seed": seed,
        "prompt_extend": prompt_extend,
        "watermark": watermark,
        "output": output,
        "idempotency_key": idempotency_key,
        "priority": priority,
        "callback_url": callback_url,
        "webhook_url": webhook_url,
        "on_complete": on_complete,
        "on_complete_queue": on_complete_queue,
    }
    if metadata is not None:
        try:
            fields["metadata"] = json.loads(metadata)
        except json.JSONDecodeError as exc:
            die(f"invalid request: metadata: not valid JSON ({exc.msg})", EXIT_INVALID)
    # A person named these files on the command line: they may be read wherever they are
    # (WANEDIT_LOCAL_INPUT_DIRS bounds what the Python API reads for other callers).
    job_id = submit_edit(fields, trusted_files=_local_files(images))
    if not wait:
        if as_json:
            print_job(get_job(job_id), True)
        else:
            click.echo(job_id)
        return
    click.echo(f"job {job_id}", err=True)
    job = wait_showing(job_id, timeout, get_job, lambda line: click.echo(line, err=True))
    print_job(job, as_json)
    code = status_exit(job["status"])
    if code == EXIT_NOT_ENDED:
        click.echo(f"wanedit: timed out after {timeout} s; the job goes on", err=True)
    sys.exit(code)


def _local_files(images: tuple[str, ...]) -> list[str]:
    from wanedit.request import SourceKind, source_kind

    return [
        image.removeprefix("file://") for image in images if source_kind(image) is SourceKind.PATH
    ]


@click.command(epilog="Exit statuses:\n\n\b\n" + exit_table_text())
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
@exit_codes
def status(job_id: str, as_json: bool) -> None:
    """Show one job; the exit status says how it stands: 0 succeeded, 1 failed, 5 canceled,
    6 not ended yet (queued, submitted or running), 4 no such job."""
    from wanedit.producers.api import get_job

    job = get_job(job_id)
    print_job(job, as_json)
    sys.exit(status_exit(job["status"]))


@click.command(epilog="Exit statuses:\n\n\b\n" + exit_table_text())
@click.argument("job_id")
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Wait up to S seconds for the provider's answer to the cancel (0: do not wait).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
@exit_codes
def cancel(job_id: str, timeout: float, as_json: bool) -> None:
    """Cancel a job and say how it went: a queued job is never sent (0); a task still PENDING
    at the provider is canceled there (0); one the provider has started cannot be: its result
    is delivered and billed (7); a job that had already ended is left as it was (8); a cancel
    not settled within --timeout is recorded and settled later (6)."""
    from wanedit.producers.api import cancel_job, get_job
    from wanedit.producers.cli.cancel_outcome import cancel_outcome, settled

    before = get_job(job_id)
    job = before
    if before["status"] not in ("succeeded", "failed", "canceled"):
        job = cancel_job(job_id)
        deadline = time.monotonic() + max(timeout, 0.0)
        while not settled(job) and time.monotonic() < deadline:
            time.sleep(0.25)
            job = get_job(job_id)
    outcome = cancel_outcome(before, job)
    if as_json:
        print_job({**job, "cancel_outcome": outcome.name}, True)
    else:
        click.echo(outcome.line)
        print_job(job, False)
    sys.exit(outcome.code)


@click.command()
@click.option("--follow", is_flag=True, help="Keep waiting for new events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--after",
    metavar="ID",
    default=None,
    help="Start after this entry id (the last one you read); warns when newer entries were "
    "trimmed from the stream before you read them.",
)
@exit_codes
@until_interrupted
def events(follow: bool, as_json: bool, after: str | None) -> None:
    """Print completion events from the stream."""
    from wanedit.config.clients import make_redis
    from wanedit.config.settings import get_settings
    from wanedit.store.events import read_events, trimmed_after

    settings = get_settings()
    client = make_redis(settings)
    start = "0-0"
    if after is not None:
        if not ENTRY_ID.fullmatch(after):
            die(
                f"--after: {after!r} is not a stream entry id such as 1732838400000-0", EXIT_INVALID
            )
        start = after
        trimmed = trimmed_after(client, settings.events_stream, after)
        if trimmed is not None:
            click.echo(
                f"wanedit: the stream {settings.events_stream} no longer holds {after}: events "
                f"after it and before {trimmed} may have been trimmed (WANEDIT_EVENTS_MAXLEN) "
                "before they were read; read those jobs' records by id (`wanedit status JOB_ID`)",
                err=True,
            )
    for entry_id, event in read_events(client, settings.events_stream, follow=follow, start=start):
        if as_json:
            click.echo(json.dumps({"id": entry_id, **event}, sort_keys=True))
        else:
            stored = sum(1 for output in event.get("outputs") or [] if "uri" in output)
            error = event.get("error") or {}
            detail = f"{stored} images" if stored else error.get("code", "")
            # Account events (account.paused, account.resumed) name an account, not a job.
            subject = event.get("job_id") or f"account {event.get('account')}"
            click.echo(f"{entry_id}  {event.get('type')}  {subject}  {detail}")


@click.command(name="schema")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the schema to FILE instead of standard output.",
)
def schema(output: str | None) -> None:
    """Print the enqueue contract (an edit request) as JSON Schema, draft 2020-12."""
    from wanedit.request import EditRequest

    text = json.dumps(EditRequest.model_json_schema(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(text)
