"""Scheduled batches: beat names a schedule, `wanedit.batch` starts its manifest once per slot,
and `wanedit.batch_chunk` tasks enqueue it a chunk of lines at a time, each handing on to the
next. A chunk that is killed or cut off is run again from the last line it handled."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from wanedit.config.celery import BATCH_CHUNK_SECONDS, BATCH_CHUNK_TASK, BATCH_LEASE, BATCH_TASK
from wanedit.cron import parse_cron, slot_of
from wanedit.errors import BackendUnavailable
from wanedit.workers import next as send
from wanedit.workers.celery_app import app
from wanedit.workers.context import get_context

log = logging.getLogger("wanedit.workers")


def slot_batch_id(name: str, slot: datetime) -> str:
    """Each slot is its own batch, even when the manifest is the same every night."""
    return f"{name}-{slot:%Y%m%dT%H%M}Z"


@app.task(name=BATCH_TASK, bind=True)
def run_scheduled_batch(self: Task, name: str, slot: str | None = None) -> str | None:
    """Start the schedule's manifest for the slot (default: the latest one at or before now).

    Two beats firing run it once: the first takes the batch's run lock. Sent again for a slot
    whose batch was cut off (its lock lapsed), it resumes after the last line handled; for a slot
    whose batch is over, it does nothing. Returns the batch id, or None when nothing started."""
    from wanedit.intake.batch import begin_scheduled
    from wanedit.intake.context import get_context as producer_context

    ctx = get_context()
    schedule = ctx.settings.batch_schedule(name)
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    when = datetime.fromisoformat(slot) if slot else slot_of(parse_cron(schedule.cron), now)
    if when is None:
        log.warning("batch schedule %s: no slot of %r near %s", name, schedule.cron, now)
        return None
    batch_id = slot_batch_id(name, when)
    # A redelivered copy of this message holds the lock it took before, and goes on.
    token = self.request.id or uuid.uuid4().hex
    started = begin_scheduled(
        batch_id,
        schedule.manifest,
        schedule.output,
        token,
        lease=BATCH_LEASE,
        context=producer_context(),
    )
    if not started:
        log.info("batch %s: running or over already; not started again", batch_id)
        return None
    send.batch_chunk(batch_id, token)
    log.info("batch %s: started from %s", batch_id, schedule.manifest)
    return batch_id


# A chunk that fails or times out is not acknowledged: its message comes back (after the
# broker's visibility timeout, or at once when its pool process dies) and resumes the batch.
@app.task(name=BATCH_CHUNK_TASK, bind=True, max_retries=None, acks_on_failure_or_timeout=False)
def run_batch_chunk(self: Task, batch_id: str, token: str) -> str:
    """Enqueue the next chunk of a scheduled batch's lines, then send the chunk after it."""
    from wanedit.intake.batch import Chunk, run_chunk
    from wanedit.intake.context import get_context as producer_context

    ctx = get_context()
    try:
        outcome = run_chunk(
            batch_id,
            token,
            lines=ctx.settings.batch_chunk_lines,
            lease=BATCH_LEASE,
            budget=BATCH_CHUNK_SECONDS,
            context=producer_context(),
        )
    except SoftTimeLimitExceeded:
        # Cut off in the middle of a line: the next chunk runs that line again, and its
        # idempotency key finds the job if it was made.
        log.warning("batch %s: chunk cut off by its time limit; going on", batch_id)
        outcome = Chunk.MORE
    except BackendUnavailable as exc:
        attempt = self.request.retries or 0
        if ctx.retry_policy.spent(attempt):
            log.error(
                "batch %s: stopped after %d attempts: %s; send wanedit.batch for its slot again "
                "to resume",
                batch_id,
                attempt + 1,
                exc,
            )
            return "stopped"
        delay = ctx.retry_policy.delay(attempt)
        log.info("batch %s: %s, retry %d in %.1fs", batch_id, exc, attempt + 1, delay)
        raise self.retry(countdown=delay, exc=None) from None
    if outcome is Chunk.MORE:
        send.batch_chunk(batch_id, token)
    return outcome.value
