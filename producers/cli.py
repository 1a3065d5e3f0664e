"""The `wanedit` console script.

Exit status: 0 succeeded (or enqueued without --wait); 1 failed, canceled or timed out;
2 invalid request or settings (nothing enqueued); 3 Redis or S3 unreachable (nothing enqueued).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
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
    if job.get("waiting_for"):
        click.echo(f"  waiting for: {job['waiting_for']}")
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


# Commands other parts of wanedit add (the sandbox, the local stack) come in by entry point, so
# this production CLI never imports them.
PLUGIN_GROUP = "wanedit.commands"


class PluginGroup(click.Group):
    """A click group that also lists the commands registered under PLUGIN_GROUP, loading one
    only when it is run or its help is shown."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        plugins = {point.name for point in entry_points(group=PLUGIN_GROUP)}
        return sorted(set(super().list_commands(ctx)) | plugins)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        for point in entry_points(group=PLUGIN_GROUP, name=name):
            loaded = point.load()
            if isinstance(loaded, click.Command):
                return loaded
        return None


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wanedit", prog_name="wanedit")
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
@click.option("--on-complete", default=None, help="Celery task name sent the completion event.")
@click.option(
    "--on-complete-queue", default=None, help="Queue for --on-complete (default: celery)."
)
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
    priority: str,
    metadata: str | None,
    callback_url: str | None,
    on_complete: str | None,
    on_complete_queue: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Enqueue one edit; print its job id (or, with --wait, the finished job)."""
    from wanedit.intake import submit_edit
    from wanedit.producers.api import get_job, wait_for_job

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
        "on_complete": on_complete,
        "on_complete_queue": on_complete_queue,
    }
    if metadata is not None:
        try:
            fields["metadata"] = json.loads(metadata)
        except json.JSONDecodeError as exc:
            _die(f"invalid request: metadata: not valid JSON ({exc.msg})", EXIT_INVALID)
    try:
        # A person named these files on the command line: they may be read wherever they are
        # (WANEDIT_LOCAL_INPUT_DIRS bounds what the Python API reads for other callers).
        job_id = submit_edit(fields, trusted_files=_local_files(images))
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


def _local_files(images: tuple[str, ...]) -> list[str]:
    from wanedit.request import SourceKind, source_kind

    return [
        image.removeprefix("file://") for image in images if source_kind(image) is SourceKind.PATH
    ]


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
def status(job_id: str, as_json: bool) -> None:
    """Show one job."""
    from wanedit.producers.api import get_job

    _show(get_job, job_id, as_json)


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
def cancel(job_id: str, as_json: bool) -> None:
    """Cancel a job (queued: never sent; PENDING at the provider: canceled there)."""
    from wanedit.producers.api import cancel_job

    _show(cancel_job, job_id, as_json)


@main.command()
@click.option("--follow", is_flag=True, help="Keep waiting for new events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def events(follow: bool, as_json: bool) -> None:
    """Print completion events from the stream."""
    import redis

    from wanedit.config.clients import make_redis
    from wanedit.config.settings import get_settings
    from wanedit.store.events import read_events

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


@main.command(name="schema")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the schema to FILE instead of standard output.",
)
def schema_command(output: str | None) -> None:
    """Print the enqueue contract (an edit request) as JSON Schema, draft 2020-12."""
    from wanedit.request import EditRequest

    text = json.dumps(EditRequest.model_json_schema(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(text)


@main.command(name="quota")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def quota_command(as_json: bool) -> None:
    """Provider accounts: slots in use, today's images and cost, the cap, the backlog."""
    from wanedit.producers.api import quota

    _print_quota(_call(quota), as_json)


@main.command(name="cap")
@click.option("--images", type=click.IntRange(min=0), default=None, help="Images per day; 0: none.")
@click.option("--reset", is_flag=True, help="Go back to WANEDIT_DAILY_IMAGE_CAP.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def cap_command(images: int | None, reset: bool, as_json: bool) -> None:
    """Change the daily image cap for all workers at once (it takes effect immediately)."""
    from wanedit.producers.api import set_daily_cap

    if (images is None) == (not reset):
        _die("give either --images N or --reset", EXIT_INVALID)
    _print_quota(_call(lambda: set_daily_cap(None if reset else images)), as_json)


@main.command(name="top")
@click.option(
    "--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True, help="Seconds."
)
@click.option("--once", is_flag=True, help="Print the numbers once and exit (for scripts).")
def top_command(interval: float, once: bool) -> None:
    """Live numbers of the whole cluster, as /metrics has them: slots, backlog, jobs, errors,
    images, cost, task durations. Refreshes in place; Ctrl-C quits."""
    import time

    import redis

    from wanedit.config.clients import make_admission, make_metrics, make_redis, read_snapshot
    from wanedit.config.settings import get_settings
    from wanedit.metrics import Snapshot
    from wanedit.producers.top import render

    try:
        settings = get_settings()
    except ConfigError as exc:
        _die(str(exc), EXIT_INVALID)
    client = make_redis(settings)
    metrics, admission = make_metrics(settings, client), make_admission(settings, client)
    # On a terminal each frame replaces the last; piped, frames follow each other.
    clear = "\x1b[H\x1b[J" if sys.stdout.isatty() and not once else ""
    try:
        while True:
            try:
                screen = render(read_snapshot(settings, metrics, admission), time.time())
            except redis.RedisError as exc:
                if once:
                    _die(f"Redis cannot be reached: {exc.__class__.__name__}", EXIT_UNAVAILABLE)
                screen = render(Snapshot(), time.time(), redis_up=False)
            click.echo(clear + screen + ("" if clear else "\n"))
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return


def _call(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return action()
    except (BackendUnavailable, ConfigError) as exc:
        _die(str(exc), EXIT_UNAVAILABLE)


def _print_quota(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    for a in data["accounts"]:
        click.echo(
            f"{a['name']:<12} {a['in_flight']}/{a['concurrency']} in flight  "
            f"{a['submit_rate']:g} submits/s  {a['query_rate']:g} queries/s  "
            f"{a['images_today']} images today = {a['cost_today']:.2f} {a['currency']}"
        )
    cap = data["daily_image_cap"]
    click.echo(
        f"today: {data['images_today']} images"
        + (f" of a cap of {cap}" if cap else " (no cap)")
        + ("  PAUSED by the cap" if data["paused"] else "")
    )
    waiting = data["waiting"]
    click.echo(f"waiting: {waiting['interactive']} interactive, {waiting['batch']} batch")


@main.command()
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
        _die("give either a MANIFEST or --prefix s3://bucket/in/", EXIT_INVALID)
    if prefix is not None and not prompt:
        _die("--prefix needs --prompt", EXIT_INVALID)
    if batch_id is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", batch_id):
        _die(f"--batch-id {batch_id[:70]!r}: 1 to 64 letters, digits, '_', '.', '-'", EXIT_INVALID)
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

    try:
        status = run_batch(source, output=output, batch_id=batch_id, on_line=progress)
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
    except FileNotFoundError as exc:
        _die(f"manifest {manifest!r}: {exc.strerror}", EXIT_INVALID)
    except ValueError as exc:
        _die(f"{manifest or prefix}: {exc}", EXIT_INVALID)
    except InvalidRequest as exc:
        _die(f"invalid request: {'; '.join(exc.problems)}", EXIT_INVALID)
    except ConfigError as exc:
        _die(str(exc), EXIT_INVALID)
    except BackendUnavailable as exc:
        _die(str(exc), EXIT_UNAVAILABLE)
    except _s3_errors() as exc:
        from wanedit.s3errors import classify_s3_error

        failure = classify_s3_error(exc)
        code = EXIT_INVALID if failure.request_fault else EXIT_UNAVAILABLE
        _die(f"S3: {failure.describe(str(manifest or prefix))}", code)
    _print_batch(status, as_json)
    if status["invalid"] or (wait and (status["failed"] or status["running"])):
        sys.exit(EXIT_FAILED)


def _s3_errors() -> tuple[type[Exception], ...]:
    from wanedit.s3errors import S3_EXCEPTIONS  # botocore loads only when a batch runs

    return S3_EXCEPTIONS


@main.command(name="batch-status")
@click.argument("batch_id")
@click.option("--summary", is_flag=True, help="Write summary.json and summary.html to S3.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def batch_status_command(batch_id: str, summary: bool, as_json: bool) -> None:
    """Show a batch: enqueued, done, failed, invalid lines and an ETA."""
    from wanedit.intake.batch import batch_status
    from wanedit.producers.summary import write_summary

    try:
        status = batch_status(batch_id)
        if summary:
            status["summary"] = write_summary(batch_id)
    except JobNotFound as exc:
        _die(str(exc), EXIT_FAILED)
    except (BackendUnavailable, ConfigError) as exc:
        _die(str(exc), EXIT_UNAVAILABLE)
    _print_batch(status, as_json)


def _print_batch(status: dict[str, Any], as_json: bool) -> None:
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
    for line in status["invalid_lines"]:
        click.echo(f"  line {line['line']}: {line['error']}")
    for code, count in sorted(status["failures_by_code"].items()):
        click.echo(f"  failed: {count} x {code}")
    for name, uri in sorted((status.get("summary") or {}).items()):
        click.echo(f"  {name}: {uri}")


@main.command()
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
    from wanedit.producers import listen as listener

    if sum(x is not None for x in (queue_url, redis_list, http_address)) != 1:
        _die("give one of --sqs QUEUE_URL, --redis-list KEY or --http HOST:PORT", EXIT_INVALID)
    try:
        ctx = get_context()
        from wanedit.logs import configure, settings_secrets

        configure(ctx.settings.log_format, secrets=settings_secrets(ctx.settings))
        if not ctx.settings.listen_rules:
            _die("WANEDIT_LISTEN_RULES is empty: no upload would become an edit", EXIT_INVALID)
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
                _die(f"--http {http_address!r}: give HOST:PORT", EXIT_INVALID)
            made, handled = 0, 0

            def count(outcome: listener.Outcome) -> None:
                nonlocal made, handled
                made, handled = made + len(outcome.jobs), handled + 1

            server = listener.http_server(ctx, host.strip("[]"), int(port), count)
            with server:
                if not once:
                    server.serve_forever()
                # --once: until one notification is handled (refused callers do not count).
                while not handled:
                    server.handle_request()
    except ConfigError as exc:
        _die(str(exc), EXIT_INVALID)
    except BackendUnavailable as exc:
        _die(str(exc), EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        return
    click.echo(f"{made} jobs enqueued")


if __name__ == "__main__":
    main()
