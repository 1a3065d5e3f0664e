"""Reconcile: find out whether a create whose answer was lost made a task.

The create is adopted when the account's task list shows its task, and sent again only when
the list shows none (`wanedit.workers.policy.reconcile` decides which).
"""

from __future__ import annotations

import logging
from typing import Any

from wanedit.errors import TerminalProviderError, TransientProviderError
from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed, billed_so_far
from wanedit.workers.policy.poll import deadline_of
from wanedit.workers.policy.reconcile import (
    Adopt,
    Decision,
    Recreate,
    decide,
    evidence_from,
    give_up,
    look_wait,
    tries_after,
    wait_before_recreate,
    window,
)
from wanedit.workers.policy.zone import ZoneSource
from wanedit.workers.steps.admit import QUERY_WAIT_MIN
from wanedit.workers.steps.common import (
    Delivery,
    account_of,
    fail,
    load,
    lost_too_often,
    owned_key,
    pace,
    reconcile_later,
)
from wanedit.workers.steps.submit import cancel_unsent, record_created
from wanedit.workers.zone import learn_from_list

log = logging.getLogger("wanedit.workers")


def reconcile(ctx: WorkerContext, job_id: str, reserved: bool, delivery: Delivery) -> None:
    """Adopt the task a lost create made, or create again only when the task list shows none."""
    job = load(ctx, job_id)
    if job is None or job.status is not Status.QUEUED or job.create_sent_at is None:
        return
    account = account_of(ctx, job)
    if not ctx.admission.claim(job.id, account.name):
        # Its slot lapsed: admission sends it again, and that submit reconciles.
        log.info("job %s: reconcile: no slot on %s; admission sends it again", job.id, account.name)
        return
    if lost_too_often(ctx, job, delivery):
        return
    settings = ctx.settings
    wait = look_wait(
        job.create_sent_at, job.create_lost_at, ctx.clock(), settle=settings.create_settle
    )
    if wait > 0:
        # No worker said the answer was lost: it may still come to the one waiting for it.
        log.info(
            "job %s: reconcile: the create may still be answered; looking in %.1fs", job.id, wait
        )
        reconcile_later(ctx, job, wait)
        return
    if not reserved:
        # The list call's query is booked now and sent when its moment comes (booking again
        # then would push the account's query schedule ever further away).
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            ctx.store.set_due(job.id, ctx.clock() + wait)
            send.reconcile(job_id, reserved=True, countdown=wait)
            return
    now = ctx.clock()
    sent_at = job.create_sent_at
    low, high = window(sent_at, now, settings.reconcile_skew, settings.create_settle)
    try:
        if ctx.zones.choice(account.name).source is ZoneSource.DEFAULT:
            # The list's window is written in the provider's zone: one taken for granted
            # could miss the task, and the edit would be created twice. Measured first.
            learn_from_list(
                ctx.zones,
                account.name,
                ctx.providers[account.name],
                settings.model,
                pace=lambda: pace(ctx, account),
            )
            pace(ctx, account)
        listed = ctx.providers[account.name].list_window(
            settings.model,
            low,
            high,
            pace=lambda: pace(ctx, account),
        )
    except TransientProviderError as exc:
        if exc.throttled:
            ctx.admission.pushed_back(account.name, "query")
        _look_failed(ctx, job, f"list call failed: {exc}")
        return
    except TerminalProviderError as exc:
        # The create may have made a task that runs and bills: look again, never give up at once.
        _look_failed(ctx, job, f"list call refused: {exc}")
        return
    ids = [task.task_id for task in listed]
    owners: list[Any] = ctx.redis.hmget(owned_key(ctx, account.name), ids) if ids else []
    mine = [task_id for task_id, owner in zip(ids, owners, strict=True) if owner == job.id]
    decision: Decision
    peers: list[tuple[float, str | None]] = []
    if mine:
        decision = Adopt(mine[0])  # adopted before, then interrupted: finish recording it
    else:
        owned = {task_id for task_id, owner in zip(ids, owners, strict=True) if owner}
        # A peer with a request id is matched by it, so it is not one of the unsure by time.
        peers = _unsure(ctx, job)
        decision = decide(
            listed,
            owned,
            sent_at,
            now,
            settings.reconcile_skew,
            [sent for sent, request_id in peers if not request_id],
            request_id=job.provider_request_id,
            claimed={request_id for _, request_id in peers if request_id},
            key_ids={t.api_key_id for t in listed if t.task_id in owned and t.api_key_id},
            settle=settings.create_settle,
        )
    if isinstance(decision, Adopt):
        taken = ctx.redis.hsetnx(owned_key(ctx, account.name), decision.task_id, job.id)
        if not taken and not mine:
            _look_again(ctx, job, f"task {decision.task_id} was taken by another job")
            return
        log.warning("job %s: the lost create made task %s; adopted", job.id, decision.task_id)
        ctx.store.update(job, {"reconciled": "adopted"}, while_in=[Status.QUEUED])
        record_created(ctx, job, account.name, decision.task_id, job.provider_request_id)
    elif isinstance(decision, Recreate):
        _recreate(ctx, job, account.name, now)
    else:
        why = f"{len(decision.candidates)} candidate tasks, undecided"
        since = evidence_from(
            sent_at,
            [sent for sent, request_id in peers if not request_id],
            skew=settings.reconcile_skew,
            settle=settings.create_settle,
        )
        _look_again(ctx, job, why, {"empty_looks": 0}, since=since)


def _recreate(ctx: WorkerContext, job: Job, account: str, now: float) -> None:
    """The list shows no task: send the create again once the evidence is enough."""
    settings = ctx.settings
    sent_at = job.create_sent_at or now
    empty = job.empty_looks + 1
    wait = wait_before_recreate(
        empty, sent_at, now, settle=settings.create_settle, look_delay=settings.reconcile_delay
    )
    if wait is not None:
        # An empty look is no undecided one: it never ends the job. The next empty look in a row
        # after the settle time sends the create again.
        ctx.store.update(job, {"empty_looks": empty}, while_in=[Status.QUEUED])
        log.info("job %s: reconcile again in %.1fs (no task in the list yet)", job.id, wait)
        reconcile_later(ctx, job, wait)
        return
    if job.recreates >= settings.retry_max:
        # Every create was answered with something that is no refusal, and made nothing.
        error = job.last_error or {}
        fail(
            ctx,
            job,
            str(error.get("code") or "CreateNotAnswered"),
            f"{job.recreates + 1} creates were answered without a refusal and the task list "
            f"showed that none made a task: {error.get('message') or 'no answer'}",
            billed=billed(None, None, sent=False),  # the list showed none: as if never sent
        )
        return
    # Compare-and-set on the create this look read: a look that overlaps another never clears
    # the create that one sent since.
    if not ctx.store.clear_create(job.id, sent_at):
        return
    if job.cancel_requested:
        log.info("job %s: the lost create made no task, and a cancel was requested", job.id)
        cancel_unsent(ctx, job)
        return
    log.warning("job %s: the lost create made no task; creating it again", job.id)
    changes = {
        "reconciled": "recreated",
        "reconcile_tries": 0,
        "empty_looks": 0,
        "recreates": job.recreates + 1,
    }
    ctx.store.update(job, changes, while_in=[Status.QUEUED])
    ctx.store.set_due(job.id, now)
    send.submit(job.id, account, job.admit_token)


def _unsure(ctx: WorkerContext, job: Job) -> list[tuple[float, str | None]]:
    """When the jobs on this account whose create outcome is unknown (this one included) sent
    theirs, with the request id an error answer gave them, if any."""
    peers = []
    for other_id in ctx.admission.in_flight_jobs(job.account or ""):
        other = load(ctx, other_id) if other_id != job.id else job
        if other and other.status is Status.QUEUED and other.create_sent_at is not None:
            request_id = other.provider_request_id if other.id != job.id else None
            peers.append((other.create_sent_at, request_id))
    return peers


def _look_failed(ctx: WorkerContext, job: Job, why: str) -> None:
    """The list call failed: nothing was learned, so no look is spent. Try again with backoff
    until the job's deadline (a throttled burst or a 5xx never ends a job whose task may run)."""
    now = ctx.clock()
    failed = job.failed_looks + 1
    if now >= deadline_of(job, ctx.settings.poll_deadline, now=now):
        fail(
            ctx,
            job,
            "CreateOutcomeUnknown",
            f"the create's answer was lost and the task list could not be read before the "
            f"job's deadline ({why}); it was not sent again, so it is never paid twice",
            billed=billed_so_far(job),
        )
        return
    ctx.store.update(job, {"failed_looks": failed}, while_in=[Status.QUEUED])
    delay = max(ctx.settings.reconcile_delay, ctx.retry_policy.delay(failed - 1, ctx.rand))
    log.info("job %s: reconcile again in %.1fs (%s)", job.id, delay, why)
    reconcile_later(ctx, job, delay)


def _look_again(
    ctx: WorkerContext,
    job: Job,
    why: str,
    changes: dict[str, Any] | None = None,
    *,
    delay: float | None = None,
    since: float | None = None,
) -> None:
    """Look again later; `since`: the send whose settle time the looks that count wait for
    (this job's own, unless unsure peers sent later; see `evidence_from`)."""
    settings = ctx.settings
    sent_at = since if since is not None else (job.create_sent_at or 0.0)
    now = ctx.clock()
    tries = tries_after(job.reconcile_tries, sent_at, now, settle=settings.create_settle)
    if give_up(tries, settings.reconcile_tries, sent_at, now, settings.create_settle):
        fail(
            ctx,
            job,
            "CreateOutcomeUnknown",
            f"the create's answer was lost and {tries} looks at the task list could not tell "
            f"whether it made a task ({why}); it was not sent again, so it is never paid twice",
            billed=billed_so_far(job),
        )
        return
    ctx.store.update(job, {"reconcile_tries": tries, **(changes or {})}, while_in=[Status.QUEUED])
    log.info("job %s: reconcile again (%s)", job.id, why)
    reconcile_later(ctx, job, ctx.settings.reconcile_delay if delay is None else delay)
