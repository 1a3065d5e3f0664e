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

log = logging.getLogger("wanedit.workers")


def cancel(
    ctx: WorkerContext, job_id: str, reserved: bool, delivery: Delivery
) -> RetryLater | None:
    """A cancel call takes a turn of the account's query rate. A job still waiting ends here."""
    job = load(ctx, job_id)
    if job is None or job.status.terminal:
        return None
    error = {"code": "Canceled", "message": "canceled at the user's request"}
    if job.status is Status.QUEUED or job.provider_task_id is None:
        if ctx.store.transition(
            job, Status.CANCELED, {"error": error}, allowed_from=[Status.QUEUED]
        ):
            notify(ctx, job)
        # A create in flight meanwhile is stopped when it is recorded (see submit).
        ended(ctx, job, billed("CANCELED", None))
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
            f"the provider cannot cancel a task that has started ({exc.code}); "
            "its result will be delivered"
        )
        ctx.store.update(job, {"cancel_refused": note}, while_in=ACTIVE)
        log.info("job %s: %s", job.id, note)
        return None
    if ctx.store.transition(job, Status.CANCELED, {"error": error, "provider_status": "CANCELED"}):
        log.info("job %s: canceled at the provider", job.id)
        notify(ctx, job)
    ended(ctx, job, billed("CANCELED", None))
    return None
