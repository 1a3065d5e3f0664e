"""The scheduled-batch task: beat names a schedule, this runs its manifest once per slot."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from wanedit.config.celery import BATCH_TASK
from wanedit.cron import parse_cron, slot_of
from wanedit.workers.celery_app import app
from wanedit.workers.context import get_context

log = logging.getLogger("wanedit.workers")
# Longer than any gap between two beats firing for the same slot.
SLOT_LOCK_SECONDS = 2 * 86400


def slot_batch_id(name: str, slot: datetime) -> str:
    """Each slot is its own batch, even when the manifest is the same every night."""
    return f"{name}-{slot:%Y%m%dT%H%M}Z"


@app.task(name=BATCH_TASK)
def run_scheduled_batch(name: str, slot: str | None = None) -> str | None:
    """Enqueue the schedule's manifest for the slot (default: the latest one at or before now).

    Two beats firing, or a redelivered message, run it once: the first takes a Redis key per
    (name, slot). Returns the batch id, or None when the slot was taken already."""
    from wanedit.intake.batch import Source, run_batch
    from wanedit.intake.context import get_context as producer_context

    ctx = get_context()
    schedule = ctx.settings.batch_schedule(name)
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    when = datetime.fromisoformat(slot) if slot else slot_of(parse_cron(schedule.cron), now)
    if when is None:
        log.warning("batch schedule %s: no slot of %r near %s", name, schedule.cron, now)
        return None
    batch_id = slot_batch_id(name, when)
    lock = ctx.store.keys.batch_slot(batch_id)
    if not ctx.redis.set(lock, now.isoformat(), nx=True, ex=SLOT_LOCK_SECONDS):
        log.info("batch %s: slot already taken; not run again", batch_id)
        return None
    status = run_batch(
        Source(schedule.manifest),
        output=schedule.output,
        batch_id=batch_id,
        context=producer_context(),
    )
    log.info(
        "batch %s: %d lines enqueued, %d invalid", batch_id, status["enqueued"], status["invalid"]
    )
    return batch_id
