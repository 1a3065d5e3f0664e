"""Provider accounts from the Python API: each account's state, and resuming a paused one."""

from __future__ import annotations

import logging
from typing import Any

import redis

from wanedit.accounts import region_of
from wanedit.intake.context import ProducerContext, get_context
from wanedit.intake.submit import nudge, unavailable
from wanedit.store.accounts import Pause, waiting_note

log = logging.getLogger("wanedit.producers")


def _row(ctx: ProducerContext, name: str, pause: Pause | None) -> dict[str, Any]:
    account = ctx.settings.account(name)
    return {
        "name": account.name,
        "region": region_of(account.base_url),
        "state": "paused" if pause else "serving",
        "paused": pause.as_dict() if pause else None,
        "in_flight": ctx.admission.in_flight(account.name),
        "concurrency": account.concurrency,
    }


def list_accounts(*, context: ProducerContext | None = None) -> list[dict[str, Any]]:
    """Every configured account: its region, whether it serves or is paused (and why), and
    its slots in use. Never a key."""
    ctx = context or get_context()
    try:
        pauses = ctx.admission.pauses.all()
        return [_row(ctx, a.name, pauses.get(a.name)) for a in ctx.settings.accounts]
    except redis.RedisError as exc:
        raise unavailable(exc) from None


def resume_account(name: str, *, context: ProducerContext | None = None) -> dict[str, Any]:
    """Lift an account's pause; its waiting jobs are admitted again. Raises ConfigError for a
    name that is not configured. Returns the account's row, with `resumed`: whether it was
    paused."""
    ctx = context or get_context()
    settings = ctx.settings
    settings.account(name)  # ConfigError: not one of WANEDIT_ACCOUNTS
    try:
        lifted = ctx.admission.pauses.resume(
            name, by="command", stream=settings.events_stream, maxlen=settings.events_maxlen
        )
        if lifted is not None:
            log.warning("account %s: resumed (it was paused: %s)", name, lifted.code)
            nudge(ctx)
        return {**_row(ctx, name, None), "resumed": lifted is not None}
    except redis.RedisError as exc:
        raise unavailable(exc) from None


def paused_note(ctx: ProducerContext) -> str | None:
    """What a queued job waits for when every account is paused (None while one serves)."""
    return waiting_note(ctx.admission.pauses.all(), [a.name for a in ctx.settings.accounts])
