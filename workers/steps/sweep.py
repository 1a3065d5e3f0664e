"""Sweep: re-drive jobs whose next step is overdue (its message late, or lost with a killed
worker), and report jobs whose record is gone."""

from __future__ import annotations

import logging
from typing import Any

from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed_so_far
from wanedit.workers.policy.sweep import Redrive, losses, redrive_step
from wanedit.workers.steps.common import fail, load, report_lost
from wanedit.workers.steps.deliver import redrive
from wanedit.workers.steps.probe import probe_paused

log = logging.getLogger("wanedit.workers")
# Overdue jobs looked at per sweep.
BATCH = 500
# Sweep times kept as beat's heartbeat.
SWEEPS_KEPT = 20


def sweep(ctx: WorkerContext) -> int:
    """Safe anywhere and any number of times: one sweep per interval takes a lock, and every
    step it sends is safe to run twice. Returns how many jobs it re-drove."""
    settings = ctx.settings
    beat(ctx)
    lock = ctx.redis.set(
        ctx.store.keys.sweep_lock, 1, nx=True, px=max(int(settings.sweep_interval * 800), 1)
    )
    if not lock:
        return 0
    # Read before this sweep sends anything: messages no worker has taken yet.
    backed_up = queue_waiting(ctx) > 0
    send.admit()  # a lost admission tick never leaves the backlog waiting
    probe_paused(ctx)  # each paused account once per WANEDIT_ACCOUNT_PROBE_SECONDS
    now = ctx.clock()
    for job_id in ctx.store.lost(BATCH):
        report_lost(ctx, job_id, "admission")
    sent = 0
    for job_id in ctx.store.overdue(now - settings.sweep_grace, BATCH):
        job = load(ctx, job_id)
        if job is None:
            report_lost(ctx, job_id, "the sweeper")
            continue
        step = redrive_step(job, settings.max_losses, backed_up=backed_up)
        lost = losses(job, backed_up=backed_up)
        if step is Redrive.WAIT:
            # Looked at again after the grace, behind the others: a long wait never keeps the
            # jobs past the first BATCH from their turn.
            ctx.store.set_due(job.id, now)
            continue
        if step is Redrive.GIVE_UP:
            message = f"the step sent again for it never ran, {lost} times in a row"
            fail(ctx, job, "WorkerLost", message, billed=billed_so_far(job))
        if not step.sends:
            ctx.store.forget_due(job_id)
            continue
        changes = {"redrives": job.redrives + 1, "redrive_at": now, "losses": lost}
        ctx.store.update(job, changes, while_in=[job.status])
        ctx.store.set_due(job.id, now)
        log.warning(
            "job %s: overdue (%s); sending %s again (%d lost in a row)",
            job.id,
            job.status.value,
            step.value,
            lost,
        )
        if step is Redrive.FINISH:
            send.finish(job.id)
        elif step is Redrive.RECONCILE:
            send.reconcile(job.id)
        else:
            send.poll(job.id)
        sent += 1
    return sent + redrive(ctx, now)


def beat(ctx: WorkerContext) -> None:
    """Note this sweep's time: only beat sends the sweeper, so the recent times say whether
    beat runs, and how many beats do (`wanedit doctor`). Every sweep message counts, the ones
    that find the lock taken too."""
    key = ctx.store.keys.sweeps
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.lpush(key, f"{ctx.clock():.3f}")
        pipe.ltrim(key, 0, SWEEPS_KEPT - 1)
        pipe.expire(key, 7 * 86400)
        pipe.execute()


def queue_waiting(ctx: WorkerContext) -> int:
    """Messages on the workers' queue that no worker has taken yet (the broker is this Redis;
    a Celery queue is a list named after it)."""
    waiting: Any = ctx.redis.llen(ctx.settings.queue)
    return int(waiting)
