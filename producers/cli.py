"""The `wanedit` console script.

Exit status: 0 succeeded (or enqueued without --wait); 1 failed, canceled or timed out;
2 invalid request or settings (nothing enqueued); 3 Redis or S3 unreachable (nothing enqueued).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from wanedit.errors import BackendUnavailable, ConfigError, InvalidRequest, JobNotFound

EXIT_FAILED, EXIT_INVALID, EXIT_UNAVAILABLE = 1, 2, 3


def _die(message: str, code: int) -> NoReturn:
    click.echo(f"wanedit: {message}", err=True)
    sys.exit(code)


def _print_job(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(job, indent=2, sort_keys=True))
        return
    click.echo(f"{job['id']}  {job['status']}  provider_task={job['provider_task_id'] or '-'}")
    for output in job["outputs"]:
        if "uri" in output:
            click.echo(f"  [{output['index']}] {output['uri']}")
        else:
            error = output["error"]
            click.echo(f"  [{output['index']}] failed: {error['code']}: {error['message']}")
    if job["error"]:
        click.echo(f"  error: {job['error']['code']}: {job['error']['message']}")
    if job.get("cancel_refused"):
        click.echo(f"  note: {job['cancel_refused']}")


def _exit_for(job: dict[str, Any]) -> int:
    return 0 if job["status"] == "succeeded" else EXIT_FAILED


def _show(action: Callable[[str], dict[str, Any]], job_id: str, as_json: bool) -> None:
    try:
        job = action(job_id)
    except JobNotFound as exc:
        _die(str(exc), EXIT_FAILED)
    except (BackendUnavailable, ConfigError) as exc:
        _die(str(exc), EXIT_UNAVAILABLE)
    _print_job(job, as_json)


@click.group()
def main() -> None:
    """wanedit: Wan 2.5 image edits through Celery workers, results into your S3."""


@main.command()
@click.option("--prompt", required=True, help="The edit instruction (1 to 2000 characters).")
@click.option(
    "--image",
    "images",
    multiple=True,
    required=True,
    help="https://, s3://, data: or a local path; 1 to 3.",
)
@click.option("--negative-prompt", default=None, help="What to avoid (at most 500 characters).")
@click.option("--n", "n", type=int, default=1, show_default=True, help="Images to make (1 to 4).")
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
@click.option("--metadata", default=None, help="A JSON object returned in the completion event.")
@click.option("--wait", is_flag=True, help="Wait for the job to end and print it.")
@click.option("--timeout", type=float, default=None, help="With --wait: give up after S seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
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
    metadata: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Enqueue one edit; print its job id (or, with --wait, the finished job)."""
    from producers.api import get_job, submit_edit, wait_for_job

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
    }
    if metadata is not None:
        try:
            fields["metadata"] = json.loads(metadata)
        except json.JSONDecodeError as exc:
            _die(f"invalid request: metadata: not valid JSON ({exc.msg})", EXIT_INVALID)
    try:
        job_id = submit_edit(fields)
        if not wait:
            if as_json:
                _print_job(get_job(job_id), True)
            else:
                click.echo(job_id)
            return
        job = wait_for_job(job_id, timeout)
    except InvalidRequest as exc:
        for problem in exc.problems:
            click.echo(f"wanedit: invalid request: {problem}", err=True)
        sys.exit(EXIT_INVALID)
    except ConfigError as exc:
        _die(str(exc), EXIT_INVALID)
    except BackendUnavailable as exc:
        _die(str(exc), EXIT_UNAVAILABLE)
    _print_job(job, as_json)
    if job["status"] not in ("succeeded", "failed", "canceled"):
        click.echo(f"wanedit: timed out after {timeout} s; the job goes on", err=True)
    sys.exit(_exit_for(job))


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
def status(job_id: str, as_json: bool) -> None:
    """Show one job."""
    from producers.api import get_job

    _show(get_job, job_id, as_json)


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
def cancel(job_id: str, as_json: bool) -> None:
    """Cancel a job (queued: never sent; PENDING at the provider: canceled there)."""
    from producers.api import cancel_job

    _show(cancel_job, job_id, as_json)


@main.command()
@click.option("--follow", is_flag=True, help="Keep waiting for new events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def events(follow: bool, as_json: bool) -> None:
    """Print completion events from the stream."""
    import redis

    from config.settings import get_settings
    from wanedit.clients import make_redis
    from wanedit.events import read_events

    settings = get_settings()
    try:
        for entry_id, event in read_events(
            make_redis(settings), settings.events_stream, follow=follow
        ):
            if as_json:
                click.echo(json.dumps({"id": entry_id, **event}, sort_keys=True))
            else:
                stored = sum(1 for output in event.get("outputs") or [] if "uri" in output)
                error = event.get("error") or {}
                detail = f"{stored} images" if stored else error.get("code", "")
                click.echo(f"{entry_id}  {event.get('type')}  {event.get('job_id')}  {detail}")
    except redis.RedisError as exc:
        _die(f"Redis cannot be reached: {exc}", EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        pass


def _register_sandbox() -> None:
    from sandbox.cli import command

    main.add_command(command, name="sandbox")


_register_sandbox()


if __name__ == "__main__":
    main()
