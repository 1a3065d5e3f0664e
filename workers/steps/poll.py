"""Poll: query the provider task once, within the account's query rate, and act on the answer."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from wanedit.accounts import Account
from wanedit.errors import ProviderError, TerminalProviderError, TransientProviderError
from wanedit.provider_time import provider_moment
from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers import next as send
from wanedit.workers.context import WorkerContext
from wanedit.workers.policy.billing import billed, billed_so_far
from wanedit.workers.policy.codes import is_account_error
from wanedit.workers.policy.events import missed_event
from wanedit.workers.policy.poll import Canceled, Fail, Finish, PollAgain, deadline_of, next_step
from wanedit.workers.policy.schedule import PollPolicy
from wanedit.workers.policy.watch import PollTurn, poll_turn
from wanedit.workers.provider import TaskState, task_seconds
from wanedit.workers.steps.admit import QUERY_WAIT_MIN
from wanedit.workers.steps.common import (
    ACTIVE,
    Delivery,
    account_of,
    ended,
    fail,
    load,
    lost_too_often,
    seen_at,
)
from wanedit.workers.steps.deliver import notify
from wanedit.workers.steps.pause import pause_account

log = logging.getLogger("wanedit.workers")

# Times a one-off look asked for by a task-end event is tried again after a transient error.
EVENT_LOOK_RETRIES = 5


def poll(
    ctx: WorkerContext, job_id: str, *, reserved: bool, chain: bool, delivery: Delivery
) -> None:
    """`chain` polls are the task's own schedule and book the next one; the list watch runs
    one-off polls (chain=False) that only act on what they see."""
    job = load(ctx, job_id)
    if job is None or job.status not in ACTIVE or job.provider_task_id is None:
        return
    if job.provider_status == "SUCCEEDED":
        # An earlier poll saw success but may have died before handing over: hand over again.
        send.finish(job_id)
        return
    if chain and not reserved and _superseded(ctx, job):
        return
    if lost_too_often(ctx, job, delivery):
        return
    account = account_of(ctx, job)
    ctx.admission.claim(job.id, account.name)  # renew the slot's lease
    settings = ctx.settings
    now = ctx.clock()
    deadline = deadline_of(job, settings.poll_deadline, now=now)
    plan = PollPolicy(**job.poll_plan) if job.poll_plan else ctx.poll_policy
    every = plan.delay(job.polls + 1)
    if chain and ctx.watching(account.name):
        turn = poll_turn(now, deadline, seen_at(ctx, account.name, job), every)
        if turn is PollTurn.BOOK:
            # The list watch is seeing this task: the fallback poll only books its next turn.
            ctx.store.set_due(job.id, now + every)
            send.poll(job_id, countdown=every)
            return
    if not reserved:
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            send.poll_reserved(job_id, chain=chain, countdown=wait)
            return
    provider = ctx.providers[account.name]
    try:
        task = provider.get(job.provider_task_id)
    except (TransientProviderError, TerminalProviderError) as exc:
        if isinstance(exc, TerminalProviderError):
            if not is_account_error(exc.http_status, exc.code, exc.message):
                fail(ctx, job, exc.code, exc.message, billed=billed_so_far(job))
                return
            # The account's fault, not the task's: the task may still run (and bill), so it is
            # polled on, as after a transient error, and the account takes no new jobs.
            pause_account(ctx, account.name, exc)
        # Transient errors back off on their own counter and do not spend the poll budget.
        if exc.throttled:
            ctx.admission.pushed_back(account.name, "query")
        if now >= deadline:
            message = f"no answer before the poll deadline: {exc}"
            fail(ctx, job, "PollDeadlineExceeded", message, billed=billed_so_far(job))
            return
        if chain:
            _poll_after_error(ctx, job, exc, now)
        elif settings.provider_events and job.transient_errors < EVENT_LOOK_RETRIES:
            # The look a task-end event asked for: nothing else looks until the safety net's
            # turn, so it is tried again after the usual backoff (a few times, then the safety
            # net's looks carry on).
            _retry_once(ctx, job, exc)
        return
    _act(ctx, job, task, account, now, plan, deadline, chain=chain)


def _poll_after_error(ctx: WorkerContext, job: Job, exc: ProviderError, now: float) -> None:
    errors = job.transient_errors + 1
    ctx.store.update(
        job, {"transient_errors": errors, "last_error": exc.as_dict()}, while_in=ACTIVE
    )
    delay = ctx.retry_policy.delay(errors - 1, ctx.rand)
    log.info("job %s: poll error %s, again in %.1fs", job.id, exc, delay)
    ctx.store.set_due(job.id, now + delay)
    send.poll(job.id, countdown=delay)


def _retry_once(ctx: WorkerContext, job: Job, exc: ProviderError) -> None:
    errors = job.transient_errors + 1
    ctx.store.update(
        job, {"transient_errors": errors, "last_error": exc.as_dict()}, while_in=ACTIVE
    )
    delay = ctx.retry_policy.delay(errors - 1, ctx.rand)
    log.info("job %s: event's look failed (%s), again in %.1fs", job.id, exc, delay)
    send.poll_once(job.id, countdown=delay)


def _act(
    ctx: WorkerContext,
    job: Job,
    task: TaskState,
    account: Account,
    now: float,
    plan: PollPolicy,
    deadline: float,
    *,
    chain: bool,
) -> None:
    """What the answer means (`next_step`), recorded and acted on."""
    step = next_step(job, task, now, plan, deadline)
    if job.polls == 0 and job.create_sent_at is not None:
        # The task's submit time against the moment its create was sent: the zone the
        # account's provider writes its times in, learned before they are read.
        ctx.zones.learn(account.name, task.times.get("submit_time"), job.create_sent_at, "create")
    seen: dict[str, Any] = {
        "polls": job.polls + 1,
        "transient_errors": 0,
        "last_error": None,
        "provider_status": task.status,
        # With the zone they are written in, so what reads them needs no setting.
        "provider_times": {**task.times, "utc_offset": ctx.providers[account.name].utc_offset_hours}
        if task.times
        else None,
    }
    if task.status in ("SUCCEEDED", "FAILED"):
        seconds = task_seconds(task.times)
        if seconds is not None:
            ctx.record_duration(account.name, seconds)
    if ctx.settings.provider_events and task.status in ("SUCCEEDED", "FAILED", "CANCELED"):
        _note_missed_event(ctx, job, task, account, now)
    if isinstance(step, PollAgain):
        if step.mark_running and job.status is Status.SUBMITTED:
            ctx.store.transition(job, Status.RUNNING, seen)
            log.info("job %s: running at the provider", job.id)
        else:
            ctx.store.update(job, seen, while_in=ACTIVE)
        if chain:
            ctx.store.set_due(job.id, now + step.delay)
            send.poll(job.id, countdown=step.delay)
    elif isinstance(step, Finish):
        seen["provider_results"] = [asdict(item) for item in task.results]
        seen["usage"] = _usage(task.image_count, account)
        seen["finish_since"] = now
        if job.status is Status.SUBMITTED:
            moved = ctx.store.transition(job, Status.RUNNING, seen)
        else:
            moved = ctx.store.update(job, seen, while_in=ACTIVE)
        if moved:
            log.info("job %s: provider succeeded, copying %d results", job.id, len(task.results))
            ctx.store.set_due(job.id, now)
            send.finish(job.id)
            # The provider's slot is free as soon as its task ends, not when our copy does.
            ended(ctx, job, billed(task.status, task.image_count))
    elif isinstance(step, Fail):
        fail(ctx, job, step.code, step.message, seen, billed=billed(task.status, task.image_count))
    elif isinstance(step, Canceled):
        error = {"code": "Canceled", "message": "the provider reports the task was canceled"}
        if ctx.store.transition(job, Status.CANCELED, {**seen, "error": error}):
            log.info("job %s: canceled at the provider", job.id)
            notify(ctx, job)
        ended(ctx, job, billed(task.status, task.image_count))


def _note_missed_event(
    ctx: WorkerContext, job: Job, task: TaskState, account: Account, now: float
) -> None:
    """A look found the task ended and no event named it: the account's events go missing, so
    its list watch runs again for a while (WANEDIT_PROVIDER_EVENTS_WATCH_SECONDS)."""
    seen = bool(ctx.redis.exists(ctx.store.keys.provider_event_seen(job.provider_task_id or "")))
    zone = ctx.providers[account.name].utc_offset_hours
    ended_at = provider_moment((task.times or {}).get("end_time"), zone)
    if missed_event(seen=seen, ended_at=ended_at, now=now):
        log.info(
            "job %s: task %s ended without its event; watching %s",
            job.id,
            task.task_id,
            account.name,
        )
        ctx.missed_event(account.name)


def _superseded(ctx: WorkerContext, job: Job) -> bool:
    """A chained poll whose job has a later poll booked belongs to an older chain (the sweeper
    started a new one while this message was held up): it stops, so polls never multiply."""
    due = ctx.store.due_at(job.id)
    interval = (job.poll_plan or {}).get("interval", ctx.settings.poll_interval)
    return due is not None and due > ctx.clock() + min(0.5 * float(interval), 1.0)


def _usage(image_count: int | None, account: Account) -> dict[str, Any]:
    """What the provider bills (successful images only), and its cost on this account."""
    count = image_count or 0
    return {
        "image_count": image_count,
        "cost": round(count * account.price, 6),
        "currency": account.currency,
    }
