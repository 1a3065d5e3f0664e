"""Each provider account, without creating a task: the key, the region, the task list, the
zone of the provider's times and its clock. Uses the workers' own client and parsers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import redis
import requests

from wanedit.accounts import Account, explain, region_of
from wanedit.config.settings import Settings
from wanedit.doctor import verdicts
from wanedit.doctor.report import Check, fail, ok, warn
from wanedit.errors import ConfigError, MalformedResponse, ProviderError
from wanedit.provider_time import measured_offset
from wanedit.workers.client import ProviderClient
from wanedit.workers.provider import ListedTask
from wanedit.workers.zone import AccountZones

# The key check's window: any recent window will do.
KEY_WINDOW = 60.0
# The task list read for the parse check: pages of 100, at most this many.
LIST_PAGES = 3
# Rows whose task is queried to measure the zone (each must agree).
ZONE_SAMPLES = 3


@dataclass
class AccountReport:
    """What was found for one account (the report's `accounts.NAME`)."""

    name: str
    base_url: str
    region: str
    checks: list[Check] = field(default_factory=list)
    key_accepted: bool = False
    rows_read: int = 0
    rows_listed: int | None = None
    zone_measured: float | None = None
    zone_how: str = ""
    zone_samples: list[dict[str, Any]] = field(default_factory=list)
    list_filter_zone_agrees: bool | None = None
    clock_skew_seconds: float | None = None
    clock_skew_uncertainty: float | None = None
    newest_row_lead_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["checks"] = [check.as_dict() for check in self.checks]
        return data


def make_client(
    session: requests.Session, settings: Settings, account: Account, zones: AccountZones
) -> ProviderClient:
    return ProviderClient(
        session,
        account.base_url,
        account.key(),
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
        zone=lambda: zones.offset(account.name),
    )


def check_account(
    account: Account,
    settings: Settings,
    zones: AccountZones,
    session: requests.Session,
    clock: Callable[[], float],
) -> AccountReport:
    report = AccountReport(account.name, account.base_url, region_of(account.base_url))
    name = account.name
    try:
        client = make_client(session, settings, account, zones)
    except ConfigError as exc:
        report.checks.append(
            fail(f"provider key [{name}]", str(exc), "set the key (DASHSCOPE_API_KEY or api_key)")
        )
        return report
    if not _key(report, client, settings, account, clock):
        return report
    rows = _list(report, client, settings, name, clock)
    if rows is not None:
        _zone(report, client, settings, account, zones, rows)
    return report


def _key(
    report: AccountReport,
    client: ProviderClient,
    settings: Settings,
    account: Account,
    clock: Callable[[], float],
) -> bool:
    """One list call with a short window: the key, the region, the provider's Date header."""
    name = f"provider key [{account.name}]"
    before = clock()
    try:
        client.list_page(settings.model, before - KEY_WINDOW, before, 1, page_size=1)
    except ProviderError as exc:
        if exc.code == "InvalidApiKey":
            report.checks.append(
                verdicts.key_refused(account.name, account.base_url, exc.code, exc.message)
            )
        elif exc.http_status is not None and 400 <= exc.http_status < 500 and not exc.throttled:
            why = explain(exc.code, exc.message, account.base_url)
            report.checks.append(
                fail(
                    name,
                    f"HTTP {exc.http_status} {exc.code}: {why}",
                    "the account must be paid and the model enabled for the key (the Model "
                    "Studio console)",
                )
            )
        else:
            report.checks.append(
                fail(
                    name,
                    f"no answer from {account.base_url}: {exc}",
                    "check the network path to the endpoint, then run again",
                )
            )
        return False
    after = clock()
    report.key_accepted = True
    report.checks.append(ok(name, f"accepted by the {report.region} endpoint"))
    skew = _skew(client.last_date, before, after)
    if skew is not None:
        report.clock_skew_seconds, report.clock_skew_uncertainty = skew
    value, spread = skew if skew is not None else (None, 0.0)
    check = verdicts.clock_skew(value, spread, settings.reconcile_skew)
    report.checks.append(_named(check, account.name))
    return True


def _skew(date: str | None, before: float, after: float) -> tuple[float, float] | None:
    """The provider's clock minus ours from its Date header (whole seconds, so the provider's
    moment is within [date, date + 1)), and how uncertain that is."""
    if not date:
        return None
    try:
        moment = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    middle = (before + after) / 2
    return round(moment + 0.5 - middle, 3), round(0.5 + (after - before) / 2, 3)


def _list(
    report: AccountReport,
    client: ProviderClient,
    settings: Settings,
    name: str,
    clock: Callable[[], float],
) -> list[ListedTask] | None:
    """The last 24 h of the task list (no time filter), every row through the workers' parser."""
    check = f"task list [{name}]"
    rows: list[ListedTask] = []
    try:
        page_no, total_page = 1, 1
        while page_no <= min(total_page, LIST_PAGES):
            page = client.list_recent(settings.model, page_no)
            rows.extend(page.rows)
            report.rows_listed = page.total
            total_page = page.total_page
            page_no += 1
    except MalformedResponse as exc:
        report.checks.append(
            fail(
                check,
                f"an answer the workers could not read: {exc}",
                "keep this report: the list's format differs from the documented one, and "
                "lost creates are reconciled from it",
            )
        )
        return None
    except ProviderError as exc:
        report.checks.append(
            fail(check, f"not read: {exc}", "run again; if it stays, see the code")
        )
        return None
    report.rows_read = len(rows)
    times = [row.submitted for row in rows if row.submitted is not None]
    if times:
        report.newest_row_lead_seconds = round(max(times) - clock(), 3)
    report.checks.append(
        ok(
            check,
            f"{len(rows)} rows of the last 24 h read and parsed ({report.rows_listed} listed)",
        )
    )
    return rows


def _zone(
    report: AccountReport,
    client: ProviderClient,
    settings: Settings,
    account: Account,
    zones: AccountZones,
    rows: list[ListedTask],
) -> None:
    """Each sampled row's `gmt_create` (epoch ms, no zone) against its task's `submit_time`
    (the provider's zone): the zone, without a task of our own."""
    try:
        stored = zones.store.get(account.name)
    except redis.RedisError:
        stored = None  # the Redis check says why
    samples = [row for row in rows if row.submitted is not None][:ZONE_SAMPLES]
    measured: list[tuple[float, ListedTask, str]] = []
    for row in samples:
        try:
            task = client.get(row.task_id)
        except ProviderError as exc:
            report.zone_samples.append({"task_id": row.task_id, "error": str(exc)})
            continue
        text = task.times.get("submit_time")
        offset = measured_offset(text, row.submitted or 0.0)
        sample = {"task_id": row.task_id, "gmt_create": row.submitted, "submit_time": text}
        report.zone_samples.append({**sample, "offset": offset})
        if offset is not None and text is not None:
            measured.append((offset, row, text))
    name = f"provider time zone [{account.name}]"
    offsets = sorted({offset for offset, _, _ in measured})
    if len(offsets) > 1:
        report.checks.append(
            warn(
                name,
                f"tasks disagree: {offsets} (keep this report)",
                "set the account's utc_offset once you know which is right",
            )
        )
        return
    how = "no task in the last 24 h to measure from"
    if samples and not measured:
        how = f"{len(samples)} tasks' times gave no zone"
    value = offsets[0] if offsets else None
    if value is not None:
        offset, row, text = measured[0]
        how = f"{len(measured)} tasks' submit_time against their list rows"
        zones.learn(account.name, text, row.submitted or 0.0, "doctor")
        agrees = _filter_agrees(client, settings, account, value, row)
        report.list_filter_zone_agrees = agrees
        if agrees is False:
            report.checks.append(
                fail(
                    f"task list window [{account.name}]",
                    f"a window written in UTC{value:+g} around task {row.task_id} does not list "
                    "it: the list's time filter is read in another zone than the time strings",
                    "keep this report; set the account's utc_offset to the zone the list's "
                    "filter needs, since lost creates are looked for through it",
                )
            )
    report.zone_measured, report.zone_how = value, how
    stored_offset = stored.offset if stored else None
    report.checks.append(verdicts.zone(account.name, value, account.utc_offset, how, stored_offset))


def _filter_agrees(
    client: ProviderClient, settings: Settings, account: Account, offset: float, row: ListedTask
) -> bool | None:
    """Whether a 2-second window around the row's submit time, written in `offset`, lists it."""
    probe = ProviderClient(
        client.session,
        account.base_url,
        account.key(),
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
        utc_offset_hours=offset,
    )
    submitted = row.submitted or 0.0
    try:
        page = probe.list_page(settings.model, submitted - 1, submitted + 1, 1, 100)
    except ProviderError:
        return None
    return any(listed.task_id == row.task_id for listed in page.rows)


def _named(check: Check, account: str) -> Check:
    return Check(f"{check.check} [{account}]", check.status, check.detail, check.fix)
