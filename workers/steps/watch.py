"""The list watch: one list call for all of an account's tasks in flight, in list mode (with
events on, only while the account's events go missing)."""

from __future__ import annotations

import logging

from wanedit.config.celery import POLL_TASK
from wanedit.errors import TerminalProviderError, TransientProviderError
from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers import next as send
from wanedit.workers.client import LIST_WINDOW_MAX
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed
from wanedit.workers.policy.watch import ages, ended, look_after_error
from wanedit.workers.steps import poll
from wanedit.workers.steps.admit import QUERY_WAIT_MIN, admit_free_slots
from wanedit.workers.steps.common import (
    ACTIVE,
    Delivery,
    load,
    pace,
    rewatch,
    seen_key,
)

log = logging.getLogger("wanedit.workers")


def watch(ctx: WorkerContext, account_name: str, *, tick: bool, reserved: bool) -> None:
    """A task that has ended gets its poll at once. Runs while the account has tasks in flight,
    one chain per account."""
    if tick:
        ctx.admission.woke(f"watch:{account_name}")
    if ctx.settings.provider_events and not ctx.watching(account_name):
        return  # events arrive again: each task's own safety-net looks carry on
    account = ctx.settings.account(account_name)
    active: list[Job] = []
    for job_id in ctx.admission.in_flight_jobs(account.name):
        job = load(ctx, job_id)
        if job is not None and job.status in ACTIVE and job.provider_task_id:
            active.append(job)
    if not active:
        return
    for job in active:
        ctx.admission.claim(job.id, account.name)  # the watch keeps their slots' leases alive
    now = ctx.clock()
    plan = ctx.plan(account.name)
    due = [job for job in active if (job.watch_at or 0.0) <= now]
    if not due:
        rewatch(ctx, account.name, min(job.watch_at or now for job in active) - now)
        return
    if not reserved:
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            rewatch(ctx, account.name, wait, reserved=True)
            return
    # The next look is booked before this one acts on what it sees: acting may send creates
    # from this process, whose own (later) bookings must not start a second watch chain.
    if len(due) == 1:
        # One task to look at: its own query costs the same as a list and brings its results.
        rewatch(ctx, account.name, plan.next_look(ages(active, now)))
        poll_now(ctx, due[0].id)
        return
    # Only the window since the oldest task in flight was sent (and never more than 24 h).
    skew = ctx.settings.reconcile_skew
    oldest = min(job.create_sent_at or job.timestamps.get("submitted", now) for job in active)
    start = max(oldest - skew, now + skew - LIST_WINDOW_MAX + 2)
    try:
        rows = ctx.providers[account.name].list_window(
            ctx.settings.model, start, now + skew, pace=lambda: pace(ctx, account)
        )
    except TransientProviderError as exc:
        if exc.throttled:
            ctx.admission.pushed_back(account.name, "query")
        log.info("account %s: list watch error %s", account.name, exc)
        rewatch(ctx, account.name, _after_error(ctx, plan.watch_interval, refused=False))
        return
    except TerminalProviderError as exc:
        # Each task's own polls still run: the watch only makes noticing faster and cheaper.
        log.warning(
            "account %s: list watch refused (%s); tasks fall back on their polls", account.name, exc
        )
        rewatch(ctx, account.name, _after_error(ctx, plan.watch_interval, refused=True))
        return
    # Rows of tasks that are not ours (another service on the account) are never looked up.
    statuses = {row.task_id: row.status for row in rows}
    done = ended(due, statuses)
    going = [job for job in active if job not in done]
    rewatch(ctx, account.name, plan.next_look(ages(going, now)))
    for job in done:
        # The result query goes to the next free worker process at once, while this one
        # hands the slot on: the provider's slot is free from the moment the list says so.
        wait = ctx.admission.reserve_query(account)
        send.poll_reserved(job.id, chain=False, countdown=wait if wait > QUERY_WAIT_MIN else None)
    # The list row carries no image count: the poll just sent tells, and corrects the spend.
    freed = [
        job
        for job in done
        if ctx.admission.release(
            job.id, account.name, billed(statuses[job.provider_task_id or ""], None)
        )
    ]
    for job in freed:
        log.info("job %s: ended at the provider; its slot on %s is free", job.id, account.name)
    if freed:
        admit_free_slots(ctx, inline=True)
    _mark_seen(ctx, account.name, [job for job in due if job.provider_task_id in statuses], now)
    for job in due:
        status = statuses.get(job.provider_task_id or "")
        if status == "RUNNING" and job.status is Status.SUBMITTED:
            ctx.store.transition(job, Status.RUNNING, {"provider_status": "RUNNING"})


def poll_now(ctx: WorkerContext, job_id: str) -> None:
    """A one-off poll in this process, on the query turn the watch booked already."""
    poll.poll(ctx, job_id, reserved=True, chain=False, delivery=Delivery(POLL_TASK))


def _after_error(ctx: WorkerContext, watch_interval: float, *, refused: bool) -> float:
    s = ctx.settings
    return look_after_error(
        refused=refused,
        watch_interval=watch_interval,
        retry_base=s.retry_base,
        poll_max_interval=s.poll_max_interval,
    )


def _mark_seen(ctx: WorkerContext, account: str, jobs: list[Job], now: float) -> None:
    ids = [job.provider_task_id for job in jobs if job.provider_task_id]
    if ids:
        key = seen_key(ctx, account)
        with ctx.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hset(key, task_id, round(now, 3))
            pipe.expire(key, 86400)
            pipe.execute()
