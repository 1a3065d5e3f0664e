"""Sweep: re-drive jobs whose next step is overdue (its message died with a killed worker)."""

from __future__ import annotations

import logging

from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed_so_far
from wanedit.workers.policy.sweep import Redrive, redrive_step
from wanedit.workers.steps.common import fail, load
from wanedit.workers.steps.deliver import redrive

log = logging.getLogger("wanedit.workers")
# Overdue jobs looked at per sweep.
BATCH = 500


def sweep(ctx: WorkerContext) -> int:
    """Safe anywhere and any number of times: one sweep per interval takes a lock, and every
    step it sends is safe to run twice. Returns how many jobs it re-drove."""
    settings = ctx.settings
    lock = ctx.redis.set(
        ctx.store.keys.sweep_lock, 1, nx=True, px=max(int(settings.sweep_interval * 800), 1)
    )
    if not lock:
        return 0
    send.admit()  # a lost admission tick never leaves the backlog waiting
    now = ctx.clock()
    sent = 0
    for job_id in ctx.store.overdue(now - settings.sweep_grace, BATCH):
        job = load(ctx, job_id)
        if job is None:
            ctx.store.forget_due(job_id)
            continue
        step = redrive_step(job, settings.max_losses)
        if step is Redrive.GIVE_UP:
            message = f"its next step was lost {job.redrives} times"
            fail(ctx, job, "WorkerLost", message, billed=billed_so_far(job))
        if not step.sends:
            ctx.store.forget_due(job_id)
            continue
        ctx.store.update(job, {"redrives": job.redrives + 1}, while_in=[job.status])
        ctx.store.set_due(job.id, now)
        log.warning("job %s: overdue (%s); sending %s again", job.id, job.status.value, step.value)
        if step is Redrive.FINISH:
            send.finish(job.id)
        elif step is Redrive.RECONCILE:
            send.reconcile(job.id)
        else:
            send.poll(job.id)
        sent += 1
    return sent + redrive(ctx, now)
