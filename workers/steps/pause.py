"""Pausing an account: its creates are refused for the account's sake, so its jobs wait.

A create the provider refused with an account error made no task: the job is not failed, it
goes back to the backlog (another account may take it), and admission gives the paused account
no slot until `wanedit accounts resume` or the probe (`wanedit.workers.steps.probe`) lifts it.
"""

from __future__ import annotations

import logging

from wanedit.accounts import explain
from wanedit.errors import ProviderError
from wanedit.workers.context import WorkerContext

log = logging.getLogger("wanedit.workers")
# The provider's text is untrusted: what every waiting job shows of it is bounded.
CODE_MAX, MESSAGE_MAX = 64, 1000


def pause_account(ctx: WorkerContext, account_name: str, exc: ProviderError) -> bool:
    """Pause the account (or say anew why it is); True if this call paused it. Logged once,
    at ERROR, by the call that paused it; the key is never part of it."""
    settings = ctx.settings
    code = exc.code[:CODE_MAX]
    message = explain(code, exc.message[:MESSAGE_MAX], settings.account(account_name).base_url)
    paused = ctx.admission.pauses.pause(
        account_name,
        code,
        message,
        stream=settings.events_stream,
        maxlen=settings.events_maxlen,
        now=ctx.clock(),
    )
    if paused:
        # The first probe comes an interval after the pause: the refusal is that fresh.
        ctx.admission.pauses.probe_turn(account_name, settings.account_probe_seconds)
        log.error(
            "account %s: paused: %s: %s (its jobs wait: wanedit accounts resume %s)",
            account_name,
            code,
            message,
            account_name,
        )
    return paused


def requeue(ctx: WorkerContext, job_id: str, account_name: str, token: int | None) -> None:
    """Give back the job's slot on a paused account and put it back in the backlog; then let
    admission hand it to an account that serves."""
    from wanedit.workers.steps.admit import admit_free_slots

    if ctx.admission.pauses.requeue(job_id, account_name, token):
        log.info("job %s: account %s is paused; back in the backlog", job_id, account_name)
        admit_free_slots(ctx)
