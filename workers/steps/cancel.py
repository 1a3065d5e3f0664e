"""Cancel: possible at the provider only while its task is PENDING."""

from __future__ import annotations

import logging

from wanedit.errors import TerminalProviderError, TransientProviderError
from wanedit.states import Status
from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed
from wanedit.workers.steps.admit import QUERY_WAIT_MIN
from wanedit.workers.steps.common import (
    ACTIVE,
    Delivery,
    RetryLater,
    account_of,
    ended,
    load,
    retry_or_fail,
)
from wanedit.workers.steps.deliver import notify
from wanedit.workers.steps.submit import CANCELED, cancel_unsent

log = logging.getLogger("wanedit.workers")
OPEN = (Status.QUEUED, *ACTIVE)


def cancel(
    ctx: WorkerContext, job_id: str, reserved: bool, delivery: Delivery
) -> RetryLater | None:
    """A cancel call takes a turn of the account's query rate. A job whose create was not sent
    ends here; a job whose create is in flight is canceled once the create is recorded (see
    submit). Only the step whose transition ends the job gives its slot back."""
    job = load(ctx, job_id)
    if job is None or job.status.terminal:
        return None
    if not job.cancel_requested:
        # From here on no create may go for it (mark_create refuses), and a create that is
        # recorded from now on sees the request.
        ctx.store.update(job, {"cancel_requested": True}, while_in=OPEN)
        job = load(ctx, job_id)
        if job is None or job.status.terminal:
            return None
    if job.provider_task_id is None:
        if job.create_sent_at is None:
            cancel_unsent(ctx, job)
        # Else a create is in flight: the step that records its task (or finds none) settles
        # the cancel. A transition that lost here means the job moved on: whatever moved it
        # saw the request.
        return None
    account = account_of(ctx, job)
    if not reserved:
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            send.cancel_reserved(job_id, countdown=wait)
            return None
    try:
        ctx.providers[account.name].cancel(job.provider_task_id)
    except TransientProviderError as exc:
        if exc.throttled:
            ctx.admission.pushed_back(account.name, "query")
        # The retry books its own query turn again.
        return retry_or_fail(ctx, job, exc, delivery, throttled=exc.throttled, args=(job_id, False))
    except TerminalProviderError as exc:
        note = (
            f"the cancel came too late: the provider cannot cancel a task that has started "
            f"({exc.code}); its result will be delivered"
        )
        ctx.store.update(job, {"cancel_refused": note}, while_in=ACTIVE)
        log.info("job %s: %s", job.id, note)
        return None
    changes = {"error": CANCELED, "provider_status": "CANCELED"}
    if ctx.store.transition(job, Status.CANCELED, changes, allowed_from=ACTIVE):
        log.info("job %s: canceled at the provider", job.id)
        notify(ctx, job)
        ended(ctx, job, billed("CANCELED", None))
    return None
