"""Admission: hand free provider slots to waiting jobs, and send their creates."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext

log = logging.getLogger("wanedit.workers")
# How soon admission looks again when it could not admit everything, by what blocked it.
# Paused: a resume (the command or the probe) sends admission at once; the tick is a safety net.
ADMIT_TICK = {"rate": 0.25, "slots": 2.0, "cap": 30.0, "paused": 30.0, "": 0.05}
# A moment (a submission's, a query turn's) closer than this is taken now.
QUERY_WAIT_MIN = 0.005


def admit(ctx: WorkerContext, *, tick: bool) -> None:
    """Run when a producer nudges, when a slot is given back, and as a follow-up tick while
    jobs wait (one tick chain at a time)."""
    ctx.admission.nudge_taken()
    if tick:
        ctx.admission.woke("admit")
    admit_free_slots(ctx)


def admit_free_slots(ctx: WorkerContext, *, inline: bool = False) -> None:
    """Admit what the free slots allow. With `inline`, a job whose submission moment has come
    is created from this process at once; the others go as messages at their moments."""
    result = ctx.admission.admit()
    # Never from inside a create: a failing one would admit and create again, recursively.
    inline = inline and not creating_here()
    now = [item for item in result.admitted if inline and item.delay <= QUERY_WAIT_MIN]
    for item in result.admitted:
        if item not in now:
            send.submit(item.job_id, item.account, item.token, countdown=item.delay)
    if result.reclaimed:
        log.warning("admission reclaimed %d expired slot leases", result.reclaimed)
    if result.waiting:
        delay = ADMIT_TICK.get(result.blocked_by, 1.0)
        if ctx.admission.book("admit", delay):
            send.admit_tick(delay)
    for item in now:
        create_now(ctx, item.job_id, item.account, item.token)


def create_now(ctx: WorkerContext, job_id: str, account: str, token: int) -> None:
    """The submit task's body in this process, skipping a message's round trip: a slot given
    back idles until the next create. A create to be retried goes on as a message."""
    send.create_here(job_id, account, token, retry_in=lambda: ctx.retry_policy.delay(0, ctx.rand))


class _Creating(threading.local):
    active = False


_creating = _Creating()


@contextmanager
def creating() -> Iterator[None]:
    """Marks this thread as running a create: admission sends no create in-process meanwhile
    (a failing create that admitted the next one at once would recurse)."""
    outer = _creating.active
    _creating.active = True
    try:
        yield
    finally:
        _creating.active = outer


def creating_here() -> bool:
    return _creating.active
