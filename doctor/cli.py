"""`wanedit doctor`: one line per check, `--json` for machines, `--live` to spend a little.

Exit statuses: 0 every check passed (warnings allowed); 1 a check failed; 2 the settings or
options are invalid; 9 the live mode was declined (nothing was created).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from wanedit.doctor import checks as deployment
from wanedit.doctor.live import Live, LivePlan, plan_for, upload_input
from wanedit.doctor.provider import AccountReport, check_account, make_client
from wanedit.doctor.report import (
    Check,
    default_report_path,
    fail,
    failed,
    iso,
    summary,
    write_report,
)
from wanedit.errors import ConfigError
from wanedit.logs import redact

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_DECLINED = 0, 1, 2, 9


class Run:
    """One doctor run: the checks so far, printed as they come unless `--json`."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.checks: list[Check] = []

    def add(self, *found: Check | None) -> None:
        for check in found:
            if check is None:
                continue
            self.checks.append(check)
            if not self.as_json:
                click.echo(check.line())

    def say(self, text: str) -> None:
        click.echo(text, err=self.as_json)


@click.command(name="doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
@click.option(
    "--live",
    is_flag=True,
    help="Also spend a few images' price: one edit per account and the concurrency probe.",
)
@click.option("--yes", is_flag=True, help="With --live: no confirmation prompt.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON report here (default with --live: wanedit-doctor-<UTC time>.json).",
)
@click.option(
    "--image",
    "image_url",
    help="With --live: the input image's public URL (default: a small PNG put in the output "
    "bucket and passed as a presigned URL).",
)
@click.option("--probe-account", help="With --live: the account the probe runs on (the first).")
@click.option(
    "--timeout",
    type=click.FloatRange(0.5, 120),
    default=5.0,
    show_default=True,
    help="Seconds to wait for workers to answer.",
)
@click.option(
    "--live-timeout",
    type=click.FloatRange(10, 6 * 3600),
    default=900.0,
    show_default=True,
    help="Seconds the live edits and the probe may take.",
)
def command(
    as_json: bool,
    live: bool,
    yes: bool,
    report_path: Path | None,
    image_url: str | None,
    probe_account: str | None,
    timeout: float,
    live_timeout: float,
) -> None:
    """Check this deployment (the settings the workers read): Redis, the output bucket, each
    provider account (without creating a task), the workers, beat and the events receiver.
    One line per check; exits 1 when a check failed."""
    from wanedit.config.settings import load_settings

    started = time.time()
    try:
        settings = load_settings()
        plan = plan_for(settings.accounts, probe_account) if live else None
    except (ConfigError, ValueError) as exc:
        click.echo(f"wanedit: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    run = Run(as_json)
    context = _context(settings)
    accounts = _check(run, settings, context, timeout)
    report: dict[str, Any] = {
        "started_at": iso(started),
        "deployment": _deployment(settings),
        "accounts": {a.name: a.as_dict() for a in accounts},
    }
    code = EXIT_FAILED if failed(run.checks) else EXIT_OK
    if plan is not None:
        blocking = live_blockers(run.checks, uploads=image_url is None)
        if blocking:
            run.say(f"--live needs these to pass first: {', '.join(blocking)}; nothing was created")
        else:
            outcome = _live(run, settings, context, plan, image_url, yes, live_timeout, report)
            code = max(code, outcome) if outcome != EXIT_DECLINED else EXIT_DECLINED
    report["checks"] = [check.as_dict() for check in run.checks]
    report["finished_at"] = iso(time.time())
    if report_path is None and plan is not None and "live" in report:
        report_path = default_report_path(started)
    if report_path is not None:
        write_report(report_path, report)
        run.say(f"report: {report_path}")
    if as_json:
        click.echo(json.dumps([check.as_dict() for check in run.checks], indent=2))
    else:
        click.echo(summary(run.checks))
    sys.exit(code)


def live_blockers(found: list[Check], *, uploads: bool) -> list[str]:
    """The failed checks the live mode cannot do without: Redis (it paces the calls), every
    account's key, and the output bucket when the input image goes there."""
    exact = {"redis", "output bucket"} if uploads else {"redis"}
    return [
        check.check
        for check in found
        if check.status == "fail"
        and (check.check in exact or check.check.startswith("provider key ["))
    ]


def _context(settings: Any) -> Any:
    from wanedit.intake.context import build_context

    return build_context(settings)


def _check(run: Run, settings: Any, context: Any, timeout: float) -> list[AccountReport]:
    from wanedit.workers.client import make_session

    session = make_session()
    redis_checks = deployment.redis_checks(context.redis, settings)
    run.add(*redis_checks)
    redis_ok = not failed(redis_checks[:1])
    run.add(*deployment.storage_checks(context.s3, settings, session, time.time))
    zones = _zones(settings, context)
    accounts = []
    for account in settings.accounts:
        found = check_account(account, settings, zones, session, time.time)
        run.add(*found.checks)
        accounts.append(found)
    if redis_ok:
        run.add(deployment.worker_check(context.celery, settings, timeout))
        run.add(deployment.beat_check(context.redis, context.store.keys, settings, time.time()))
    run.add(deployment.receiver_check(settings, session))
    return accounts


def _zones(settings: Any, context: Any) -> Any:
    from wanedit.store.zones import ZoneStore
    from wanedit.workers.zone import AccountZones

    configured = {account.name: account.utc_offset for account in settings.accounts}
    return AccountZones(ZoneStore(context.redis, context.store.keys), configured)


def _live(
    run: Run,
    settings: Any,
    context: Any,
    plan: LivePlan,
    image_url: str | None,
    yes: bool,
    timeout: float,
    report: dict[str, Any],
) -> int:
    run.say("--live creates provider tasks, billed per successful image:")
    for line in plan.describe():
        run.say(line)
    if not yes:
        try:
            agreed = click.confirm("Create them?", default=False, err=True)
        except click.Abort:
            agreed = False
        if not agreed:
            run.say("declined: nothing was created")
            return EXIT_DECLINED
    from wanedit.workers.client import make_session

    uploaded = None
    if image_url is None:
        try:
            uploaded, image_url = upload_input(context.s3, settings, time.time)
        except (BotoCoreError, ClientError, ConfigError) as exc:
            run.add(fail("live input image", redact(str(exc)), "pass --image URL"))
            return EXIT_FAILED
    session = make_session()
    zones = _zones(settings, context)
    live = Live(
        settings=settings,
        zones=zones,
        admission=context.admission,
        clients={a.name: make_client(session, settings, a, zones) for a in plan.accounts},
        downloads=make_session(),
        echo=run.say,
        timeout=timeout,
    )
    try:
        found, sections = live.run(plan, image_url)
    finally:
        if uploaded is not None:
            _delete(context.s3, uploaded)
    run.add(*found)
    report["live"] = {
        "plan": {a.name: plan.images(a) for a in plan.accounts},
        "cost_at_most": plan.cost(),
        "input_image": "uploaded to the output bucket" if uploaded else "--image",
        "accounts": sections,
    }
    return EXIT_FAILED if failed(found) else EXIT_OK


def _delete(s3: Any, uri: str) -> None:
    from wanedit.storage import S3Location

    where = S3Location.parse_object(uri)
    with contextlib.suppress(BotoCoreError, ClientError):  # a leftover image costs nothing
        s3.delete_object(Bucket=where.bucket, Key=where.key)


def _deployment(settings: Any) -> dict[str, Any]:
    """What was checked, never a secret."""
    from wanedit.accounts import region_of
    from wanedit.config.settings import redact_url

    return {
        "redis": redact_url(settings.redis_url),
        "queue": settings.queue,
        "key_prefix": settings.key_prefix,
        "output_uri": settings.output_uri,
        "result_url_ttl": settings.result_url_ttl,
        "provider_events": settings.provider_events,
        "accounts": [
            {
                "name": a.name,
                "base_url": a.base_url,
                "region": region_of(a.base_url),
                "concurrency": a.concurrency,
                "submit_rate": a.submit_rate,
                "price_per_image": a.price,
                "currency": a.currency,
                "utc_offset_configured": a.utc_offset,
            }
            for a in settings.accounts
        ],
    }
