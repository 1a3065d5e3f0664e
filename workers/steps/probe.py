"""Probe paused accounts: one cheap call (the task list, page size 1) per account every
`WANEDIT_ACCOUNT_PROBE_SECONDS`, across every worker (a lock per account). A 200 resumes the
account and its jobs are admitted again; an account error keeps the pause (with the new message);
anything else (a 429, a 5xx, no answer) says nothing about the account and changes nothing."""

from __future__ import annotations

import logging

from wanedit.errors import ProviderError
from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.codes import is_account_error
from wanedit.workers.steps.pause import pause_account

log = logging.getLogger("wanedit.workers")
# The list window the probe asks for: any recent window will do, the answer's rows are unused.
WINDOW = 60.0


def probe_paused(ctx: WorkerContext) -> list[str]:
    """Probe each paused account whose turn it is; returns the accounts it resumed."""
    settings = ctx.settings
    pauses = ctx.admission.pauses
    configured = {account.name for account in settings.accounts}
    resumed = []
    for name in pauses.all():
        if name not in configured or not pauses.probe_turn(name, settings.account_probe_seconds):
            continue
        now = ctx.clock()
        try:
            ctx.providers[name].list_page(settings.model, now - WINDOW, now, 1, page_size=1)
        except ProviderError as exc:
            if is_account_error(exc.http_status, exc.code, exc.message):
                pause_account(ctx, name, exc)
                log.info("account %s: probe refused (%s); still paused", name, exc.code)
            else:
                log.info("account %s: probe inconclusive (%s); still paused", name, exc.code)
            continue
        if pauses.resume(
            name, by="probe", stream=settings.events_stream, maxlen=settings.events_maxlen
        ):
            log.warning("account %s: the probe was answered; resumed", name)
            resumed.append(name)
    if resumed:
        send.admit()
    return resumed
