"""The Celery tasks: a thin shell of I/O around the pure decisions in `steps` and `schedule`.

Every task takes a job id, loads the job, does one piece of I/O and schedules what comes next.
Each may run twice: transitions are compare-and-set, keys are deterministic, and the event is
written by the same atomic step as the terminal status. No task sleeps: waiting is a countdown.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import Any

from celery import Task
from celery.exceptions import Retry

from wanedit.accounts import Account
from wanedit.config.celery import (
    ADMIT_TASK,
    CANCEL_TASK,
    FINISH_TASK,
    POLL_TASK,
    RECONCILE_TASK,
    SUBMIT_TASK,
    SWEEP_TASK,
    WATCH_TASK,
)
from wanedit.errors import (
    ConfigError,
    JobNotFound,
    OutcomeUnknown,
    ProviderError,
    StorageError,
    TerminalProviderError,
    TransientProviderError,
)
from wanedit.request import EditRequest
from wanedit.states import Status
from wanedit.storage import S3Location
from wanedit.store.record import Job, Phase
from wanedit.workers.app import app
from wanedit.workers.callbacks import notify, redrive
from wanedit.workers.client import LIST_WINDOW_MAX
from wanedit.workers.context import WorkerContext, get_context
from wanedit.workers.provider import ResultItem, task_seconds
from wanedit.workers.reconcile import Adopt, Recreate, decide
from wanedit.workers.schedule import PollPolicy, backoff
from wanedit.workers.steps import (
    Canceled,
    Fail,
    Finish,
    PollAgain,
    deadline_of,
    next_step,
    redrive_step,
)
from wanedit.workers.transfer import TransientStorageError, copy_result, resolve_image

log = logging.getLogger("wanedit.workers")
ACTIVE = (Status.SUBMITTED, Status.RUNNING)
ENDED_STATUSES = ("SUCCEEDED", "FAILED", "CANCELED")  # provider task states that free its slot
# How soon admission looks again when it could not admit everything, by what blocked it.
ADMIT_TICK = {"rate": 0.25, "slots": 2.0, "cap": 30.0, "": 0.05}
QUERY_WAIT_MIN = 0.005
# A list walk's further pages wait for their query turn in-process, up to this long.
PACE_MAX = 2.0
# Task-list looks in a row that must show no task before a lost create is sent again.
EMPTY_LOOKS = 2


class _Inline(threading.local):
    sending = False


_inline = _Inline()


def _load(ctx: WorkerContext, job_id: str) -> Job | None:
    try:
        return ctx.store.get(job_id)
    except JobNotFound:
        log.warning("job %s: no record (expired or never created); dropping the message", job_id)
        return None


def _account(ctx: WorkerContext, job: Job) -> Account:
    return ctx.settings.account(job.account or ctx.settings.accounts[0].name)


def _lost_too_often(task: Task, ctx: WorkerContext, job: Job) -> bool:
    """Count this message's deliveries; a message redelivered because its worker died, more
    than `max_losses` times, ends the job instead of killing workers forever."""
    if task.request.called_directly or not task.request.id:
        return False  # run in-process by another task, which did its own counting
    # A retry keeps the message id with one more retry; a redelivery repeats both.
    key = ctx.store.keys.deliveries(str(task.request.id), task.request.retries or 0)
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 86400)
        deliveries = int(pipe.execute()[0])
    if deliveries <= ctx.settings.max_losses:
        return False
    _fail(
        ctx,
        job,
        "WorkerLost",
        f"the worker running {task.name} was lost {deliveries - 1} times",
        billed=0 if job.status is Status.QUEUED and job.create_sent_at is None else None,
    )
    return True


def _owned_key(ctx: WorkerContext, account: str) -> str:
    """Provider task id -> job id, for every task our creates made on `account`."""
    return ctx.store.keys.provider_tasks(account)


def _ended(ctx: WorkerContext, job: Job, billed: int | None) -> None:
    """When the provider task has ended: give its slot back and let the next job in. Safe to
    call again (only the first release counts)."""
    if job.account and job.provider_task_id:
        ctx.redis.hdel(_seen_key(ctx, job.account), job.provider_task_id)
    if job.account and ctx.admission.release(job.id, job.account, billed):
        # The slot idles until the next create: send it from here rather than by messages.
        _admit(ctx, inline=True)


def _fail(
    ctx: WorkerContext,
    job: Job,
    code: str,
    message: str,
    extra: dict[str, Any] | None = None,
    *,
    billed: int | None = 0,
) -> None:
    changes = {"error": {"code": code, "message": message}, **(extra or {})}
    if ctx.store.transition(job, Status.FAILED, changes):
        log.error("job %s: failed: %s: %s", job.id, code, message)
        notify(ctx, job)
    _ended(ctx, job, billed)


def _retry(
    task: Task,
    ctx: WorkerContext,
    job: Job,
    exc: Exception,
    *,
    throttled: bool,
    args: tuple[Any, ...] | None = None,
) -> None:
    """Retry the task with backoff (with other `args` if given); give up after the retry budget
    (throttling: the deadline)."""
    settings = ctx.settings
    attempt = task.request.retries
    limit = getattr(exc, "max_retries", None)
    limit = settings.retry_max if limit is None else limit
    past_deadline = ctx.clock() >= deadline_of(job, settings.poll_deadline)
    if past_deadline or (not throttled and attempt >= limit):
        code = getattr(exc, "code", "StorageUnavailable")
        billed = 0 if job.status is Status.QUEUED else None
        _fail(ctx, job, code, f"gave up after {attempt + 1} attempts: {exc}", billed=billed)
        return
    delay = backoff(attempt, base=settings.retry_base, cap=settings.retry_cap, rand=ctx.rand)
    log.info("job %s: %s, retry %d in %.1fs", job.id, exc, attempt + 1, delay)
    raise task.retry(args=args, countdown=delay, max_retries=None, exc=None)


@app.task(name=ADMIT_TASK)
def admit(tick: bool = False) -> None:
    """Hand free provider slots to waiting jobs, best first, each at its rate-limited moment.

    Runs when a producer nudges, when a slot is given back, and as a follow-up tick while jobs
    wait (one tick chain at a time)."""
    ctx = get_context()
    ctx.admission.nudge_taken()
    if tick:
        ctx.admission.woke("admit")
    _admit(ctx)


def _admit(ctx: WorkerContext, *, inline: bool = False) -> None:
    """Admit what the free slots allow. With `inline`, a job whose submission moment has come
    is sent from this process at once; the others go as messages at their moments."""
    result = ctx.admission.admit()
    # Not from inside a submit message: the in-process create would read that message's request.
    inline = inline and not _inline.sending and submit.request_stack.top is None
    now = [item for item in result.admitted if inline and item.delay <= QUERY_WAIT_MIN]
    for item in result.admitted:
        if item not in now:
            submit.apply_async((item.job_id, item.account), countdown=item.delay)
    if result.reclaimed:
        log.warning("admission reclaimed %d expired slot leases", result.reclaimed)
    if result.waiting:
        delay = ADMIT_TICK.get(result.blocked_by, 1.0)
        if ctx.admission.book("admit", delay):
            admit.apply_async((True,), countdown=delay)
    # A create that fails here ends its job and admits again: that admission goes by message,
    # so a run of failing jobs never recurses.
    _inline.sending = True
    try:
        for item in now:
            try:
                submit.run(item.job_id, item.account)
            except Retry:
                # A transient error in-process: the create goes on as a message, with backoff.
                s = ctx.settings
                delay = backoff(0, base=s.retry_base, cap=s.retry_cap, rand=ctx.rand)
                submit.apply_async((item.job_id, item.account), countdown=delay, retries=1)
    finally:
        _inline.sending = False


@app.task(name=SUBMIT_TASK, bind=True, max_retries=None)
def submit(self: Task, job_id: str, account_name: str) -> None:
    """Create the provider task for an admitted job, record its id, then schedule the first poll."""
    ctx = get_context()
    job = _load(ctx, job_id)
    if job is None:
        ctx.admission.release(job_id, account_name, 0)
        return
    if job.status is not Status.QUEUED:
        if job.status.terminal and job.provider_task_id is None:
            _ended(ctx, job, 0)  # canceled while admitted: the slot was never used
        return
    if not ctx.admission.claim(job.id, account_name):
        log.warning(
            "job %s: its slot on %s has lapsed; it waits for admission", job.id, account_name
        )
        return
    if _lost_too_often(self, ctx, job):
        return
    settings = ctx.settings
    if job.phase is Phase.CREATING:
        # A create went out before (its answer was lost, or its worker died): look first.
        _reconcile_later(ctx, job, 0.0)
        return
    try:
        account = settings.account(account_name)
        provider = ctx.providers[account.name]
        request = EditRequest.model_validate(job.request)
        images = [
            resolve_image(source, ctx.s3, settings.image_transport, settings.presign_ttl_seconds)
            for source in request.images
        ]
    except TransientStorageError as exc:
        _retry(self, ctx, job, exc, throttled=False)
        return
    except (StorageError, ConfigError, ValueError) as exc:
        _fail(ctx, job, "InputUnavailable", str(exc))
        return
    if not ctx.store.mark_create(job.id):
        _reconcile_later(ctx, job, 0.0)
        return
    try:
        task_id, request_id = provider.create(settings.model, request.provider_input(images))
    except OutcomeUnknown as exc:
        # It may have made a task (and will bill it): never send it again blindly.
        log.warning("job %s: create answer lost (%s); reconciling", job.id, exc)
        # The list row of a task this create made carries the error answer's request id.
        lost = {"provider_request_id": exc.request_id, "last_error": exc.as_dict()}
        ctx.store.update(job, lost, while_in=[Status.QUEUED])
        _reconcile_later(ctx, job, settings.reconcile_delay)
        return
    except TransientProviderError as exc:
        # The provider answered with an error, or the request never left: no task was made.
        ctx.store.clear_create(job)
        if exc.throttled:
            ctx.admission.pushed_back(account_name, "submit")
        _retry(self, ctx, job, exc, throttled=exc.throttled)
        return
    except TerminalProviderError as exc:
        _fail(ctx, job, exc.code, exc.message)
        return
    _record_created(ctx, job, account.name, task_id, request_id)


def _reconcile_later(ctx: WorkerContext, job: Job, delay: float) -> None:
    ctx.store.set_due(job.id, ctx.clock() + delay)
    reconcile.apply_async((job.id,), countdown=delay)


def _record_created(
    ctx: WorkerContext, job: Job, account_name: str, task_id: str, request_id: str | None
) -> None:
    """The provider task exists: record it before any poll can be scheduled."""
    settings = ctx.settings
    provider = ctx.providers[account_name]
    owned = _owned_key(ctx, account_name)
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hset(owned, task_id, job.id)
        pipe.expire(owned, 2 * 86400)
        pipe.execute()
    plan = ctx.plan(account_name)
    recorded = ctx.store.transition(
        job,
        Status.SUBMITTED,
        {
            "provider_task_id": task_id,
            "provider_request_id": request_id,
            "provider_status": "PENDING",
            "poll_plan": plan.polls.as_dict(),
            "watch_at": ctx.clock() + plan.watch_after,
        },
    )
    if not recorded:
        # Canceled while the create was in flight: keep the id, and stop the task if we can.
        ctx.store.update(job, {"provider_task_id": task_id}, while_in=None)
        log.warning("job %s: canceled during create; canceling provider task %s", job.id, task_id)
        try:
            _pace(ctx, settings.account(account_name))
            provider.cancel(task_id)
        except ProviderError as exc:
            log.warning("job %s: provider cancel refused: %s", job.id, exc)
        return
    log.info("job %s: submitted as provider task %s on %s", job.id, task_id, account_name)
    ctx.store.set_due(job.id, ctx.clock() + plan.polls.first_delay)
    poll.apply_async((job.id,), countdown=plan.polls.first_delay)
    if settings.poll_mode == "list":
        _rewatch(ctx, account_name, plan.watch_after)


@app.task(name=RECONCILE_TASK, bind=True, max_retries=None)
def reconcile(self: Task, job_id: str, reserved: bool = False) -> None:
    """Find out whether a create whose answer was lost made a task: adopt it, or create again
    only when the provider's task list shows none."""
    ctx = get_context()
    job = _load(ctx, job_id)
    if job is None or job.status is not Status.QUEUED or job.create_sent_at is None:
        return
    account = _account(ctx, job)
    if not ctx.admission.claim(job.id, account.name):
        # Its slot lapsed: admission sends it again, and that submit reconciles.
        log.info("job %s: reconcile: no slot on %s; admission sends it again", job.id, account.name)
        return
    if _lost_too_often(self, ctx, job):
        return
    settings = ctx.settings
    if not reserved:
        # The list call's query is booked now and sent when its moment comes (booking again
        # then would push the account's query schedule ever further away).
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            ctx.store.set_due(job.id, ctx.clock() + wait)
            reconcile.apply_async((job_id, True), countdown=wait)
            return
    now = ctx.clock()
    sent_at = job.create_sent_at
    try:
        listed = ctx.providers[account.name].list_window(
            settings.model,
            sent_at - settings.reconcile_skew,
            now + settings.reconcile_skew,
            pace=lambda: _pace(ctx, account),
        )
    except TransientProviderError as exc:
        if exc.throttled:
            ctx.admission.pushed_back(account.name, "query")
        _reconcile_again(ctx, job, f"list call failed: {exc}")
        return
    except TerminalProviderError as exc:
        # The create may have made a task that runs and bills: look again, never give up at once.
        _reconcile_again(ctx, job, f"list call refused: {exc}")
        return
    ids = [task.task_id for task in listed]
    owners: list[Any] = ctx.redis.hmget(_owned_key(ctx, account.name), ids) if ids else []
    mine = [task_id for task_id, owner in zip(ids, owners, strict=True) if owner == job.id]
    if mine:
        decision: Any = Adopt(mine[0])  # adopted before, then interrupted: finish recording it
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
        )
    if isinstance(decision, Adopt):
        taken = ctx.redis.hsetnx(_owned_key(ctx, account.name), decision.task_id, job.id)
        if not taken and not mine:
            _reconcile_again(ctx, job, f"task {decision.task_id} was taken by another job")
            return
        log.warning("job %s: the lost create made task %s; adopted", job.id, decision.task_id)
        ctx.store.update(job, {"reconciled": "adopted"}, while_in=[Status.QUEUED])
        _record_created(ctx, job, account.name, decision.task_id, job.provider_request_id)
    elif isinstance(decision, Recreate):
        empty = job.empty_looks + 1
        settled = sent_at + settings.create_settle
        if empty < EMPTY_LOOKS or now < settled:
            # One empty list is no proof: the provider may list a task a moment after making
            # it, and a create our client gave up on may still reach it (held in a proxy, a
            # gateway or a busy server's queue). Only a second empty look in a row, made at
            # least WANEDIT_RECONCILE_SETTLE after the send, sends it again (a look that
            # failed is not an empty one).
            _reconcile_again(
                ctx,
                job,
                "no task in the list yet",
                {"empty_looks": empty},
                delay=max(settings.reconcile_delay, settled - now),
            )
            return
        if job.recreates >= settings.retry_max:
            # Every create was answered with something that is no refusal, and made nothing.
            error = job.last_error or {}
            _fail(
                ctx,
                job,
                str(error.get("code") or "CreateNotAnswered"),
                f"{job.recreates + 1} creates were answered without a refusal and the task list "
                f"showed that none made a task: {error.get('message') or 'no answer'}",
            )
            return
        log.warning("job %s: the lost create made no task; creating it again", job.id)
        changes = {
            "reconciled": "recreated",
            "reconcile_tries": 0,
            "empty_looks": 0,
            "recreates": job.recreates + 1,
        }
        ctx.store.update(job, changes, while_in=[Status.QUEUED])
        if ctx.store.clear_create(job):
            ctx.store.set_due(job.id, now)
            submit.apply_async((job.id, account.name))
    else:
        why = f"{len(decision.candidates)} candidate tasks, undecided"
        _reconcile_again(ctx, job, why, {"empty_looks": 0})


def _unsure(ctx: WorkerContext, job: Job) -> list[tuple[float, str | None]]:
    """When the jobs on this account whose create outcome is unknown (this one included) sent
    theirs, with the request id an error answer gave them, if any."""
    peers = []
    for other_id in ctx.admission.in_flight_jobs(job.account or ""):
        other = _load(ctx, other_id) if other_id != job.id else job
        if other and other.status is Status.QUEUED and other.create_sent_at is not None:
            request_id = other.provider_request_id if other.id != job.id else None
            peers.append((other.create_sent_at, request_id))
    return peers


def _pace(ctx: WorkerContext, account: Account) -> None:
    """Wait for the account's next query turn: the further pages of a list walk, a cancel."""
    wait = ctx.admission.reserve_query(account)
    if wait > PACE_MAX:
        raise TransientProviderError(
            "QueryBudgetBusy", f"the account's next query turn is {wait:.1f} s away"
        )
    if wait > QUERY_WAIT_MIN:
        time.sleep(wait)


def _reconcile_again(
    ctx: WorkerContext,
    job: Job,
    why: str,
    changes: dict[str, Any] | None = None,
    *,
    delay: float | None = None,
) -> None:
    tries = job.reconcile_tries + 1
    if tries >= ctx.settings.reconcile_tries:
        _fail(
            ctx,
            job,
            "CreateOutcomeUnknown",
            f"the create's answer was lost and {tries} looks at the task list could not tell "
            f"whether it made a task ({why}); it was not sent again, so it is never paid twice",
            billed=None,
        )
        return
    ctx.store.update(job, {"reconcile_tries": tries, **(changes or {})}, while_in=[Status.QUEUED])
    log.info("job %s: reconcile again (%s)", job.id, why)
    _reconcile_later(ctx, job, ctx.settings.reconcile_delay if delay is None else delay)


@app.task(name=SWEEP_TASK)
def sweep() -> int:
    """Re-drive jobs whose next step is overdue (its message died with a killed worker).

    Run by beat; safe anywhere and any number of times: one sweep per interval takes a lock,
    and every step it sends is safe to run twice. Returns how many jobs it re-drove."""
    ctx = get_context()
    settings = ctx.settings
    lock = ctx.redis.set(
        ctx.store.keys.sweep_lock, 1, nx=True, px=max(int(settings.sweep_interval * 800), 1)
    )
    if not lock:
        return 0
    admit.apply_async()  # a lost admission tick never leaves the backlog waiting
    now = ctx.clock()
    sent = 0
    for job_id in ctx.store.overdue(now - settings.sweep_grace, 500):
        job = _load(ctx, job_id)
        step = None if job is None else redrive_step(job)
        if job is None or step is None:
            ctx.store.forget_due(job_id)
            continue
        if job.redrives >= settings.max_losses:
            _fail(
                ctx,
                job,
                "WorkerLost",
                f"its next step was lost {job.redrives} times",
                billed=None if job.create_sent_at or job.provider_task_id else 0,
            )
            ctx.store.forget_due(job_id)
            continue
        ctx.store.update(job, {"redrives": job.redrives + 1}, while_in=[job.status])
        ctx.store.set_due(job.id, now)
        log.warning("job %s: overdue (%s); sending %s again", job.id, job.status.value, step)
        if step == "finish":
            finish.apply_async((job.id,))
        elif step == "reconcile":
            reconcile.apply_async((job.id,))
        else:
            poll.apply_async((job.id,))
        sent += 1
    return sent + redrive(ctx, now)


def _rewatch(ctx: WorkerContext, account: str, delay: float, *, reserved: bool = False) -> None:
    if ctx.admission.book(f"watch:{account}", delay):
        watch.apply_async((account, True, reserved), countdown=max(delay, 0.0))


@app.task(name=WATCH_TASK)
def watch(account_name: str, tick: bool = False, reserved: bool = False) -> None:
    """One list call for all of an account's tasks in flight; a task that has ended gets its
    poll at once. Runs while the account has tasks in flight, one chain per account."""
    ctx = get_context()
    if tick:
        ctx.admission.woke(f"watch:{account_name}")
    account = ctx.settings.account(account_name)
    active: list[Job] = []
    for job_id in ctx.admission.in_flight_jobs(account.name):
        job = _load(ctx, job_id)
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
        _rewatch(ctx, account.name, min(job.watch_at or now for job in active) - now)
        return
    if not reserved:
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            _rewatch(ctx, account.name, wait, reserved=True)
            return
    # The next look is booked before this one acts on what it sees: acting may send creates
    # from this process, whose own (later) bookings must not start a second watch chain.
    if len(due) == 1:
        # One task to look at: its own query costs the same as a list and brings its results.
        _rewatch(ctx, account.name, plan.next_look(_ages(active, now)))
        poll.run(due[0].id, True, False)
        return
    # Only the window since the oldest task in flight was sent (and never more than 24 h).
    skew = ctx.settings.reconcile_skew
    oldest = min(job.create_sent_at or job.timestamps.get("submitted", now) for job in active)
    start = max(oldest - skew, now + skew - LIST_WINDOW_MAX + 2)
    try:
        rows = ctx.providers[account.name].list_window(
            ctx.settings.model, start, now + skew, pace=lambda: _pace(ctx, account)
        )
    except TransientProviderError as exc:
        if exc.throttled:
            ctx.admission.pushed_back(account.name, "query")
        log.info("account %s: list watch error %s", account.name, exc)
        _rewatch(ctx, account.name, max(plan.watch_interval, ctx.settings.retry_base))
        return
    except TerminalProviderError as exc:
        # Each task's own polls still run: the watch only makes noticing faster and cheaper.
        log.warning(
            "account %s: list watch refused (%s); tasks fall back on their polls", account.name, exc
        )
        _rewatch(ctx, account.name, ctx.settings.poll_max_interval)
        return
    # Rows of tasks that are not ours (another service on the account) are never looked up.
    statuses = {row.task_id: row.status for row in rows}
    ended = [job for job in due if statuses.get(job.provider_task_id or "") in ENDED_STATUSES]
    going = [job for job in active if job not in ended]
    _rewatch(ctx, account.name, plan.next_look(_ages(going, now)))
    for job in ended:
        # The result query goes to the next free worker process at once, while this one
        # hands the slot on: the provider's slot is free from the moment the list says so.
        wait = ctx.admission.reserve_query(account)
        poll.apply_async((job.id, True, False), countdown=wait if wait > QUERY_WAIT_MIN else None)
    freed = [job for job in ended if ctx.admission.release(job.id, account.name, None)]
    for job in freed:
        log.info("job %s: ended at the provider; its slot on %s is free", job.id, account.name)
    if freed:
        _admit(ctx, inline=True)
    _mark_seen(ctx, account.name, [job for job in due if job.provider_task_id in statuses], now)
    for job in due:
        status = statuses.get(job.provider_task_id or "")
        if status == "RUNNING" and job.status is Status.SUBMITTED:
            ctx.store.transition(job, Status.RUNNING, {"provider_status": "RUNNING"})


def _seen_key(ctx: WorkerContext, account: str) -> str:
    """Provider task id -> when the list watch last saw it (unix seconds)."""
    return ctx.store.keys.watch_seen(account)


def _mark_seen(ctx: WorkerContext, account: str, jobs: list[Job], now: float) -> None:
    ids = [job.provider_task_id for job in jobs if job.provider_task_id]
    if ids:
        key = _seen_key(ctx, account)
        with ctx.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hset(key, task_id, round(now, 3))
            pipe.expire(key, 86400)
            pipe.execute()


def _watched(ctx: WorkerContext, account: str, job: Job, within: float) -> bool:
    """True if the list watch saw this job's task in the last `within` seconds."""
    raw: Any = ctx.redis.hget(_seen_key(ctx, account), job.provider_task_id or "")
    try:
        return raw is not None and ctx.clock() - float(raw) < within
    except ValueError:
        return False


def _ages(jobs: list[Job], now: float) -> list[float]:
    """Seconds since each job's provider task was created."""
    return [now - job.timestamps.get(Status.SUBMITTED.value, now) for job in jobs]


@app.task(name=POLL_TASK, bind=True, max_retries=None)
def poll(self: Task, job_id: str, reserved: bool = False, chain: bool = True) -> None:
    """Query the provider task once, within the account's query rate, and act on the answer.

    `chain` polls are the task's own schedule and book the next one; the list watch runs
    one-off polls (chain=False) that only act on what they see."""
    ctx = get_context()
    job = _load(ctx, job_id)
    if job is None or job.status not in ACTIVE or job.provider_task_id is None:
        return
    if job.phase is Phase.FINISHING:
        # An earlier poll saw success but may have died before handing over: hand over again.
        finish.apply_async((job_id,))
        return
    if chain and not reserved and _superseded(ctx, job):
        return
    if _lost_too_often(self, ctx, job):
        return
    account = _account(ctx, job)
    ctx.admission.claim(job.id, account.name)  # renew the slot's lease
    settings = ctx.settings
    now = ctx.clock()
    deadline = deadline_of(job, settings.poll_deadline)
    plan = PollPolicy(**job.poll_plan) if job.poll_plan else ctx.poll_policy
    if chain and now < deadline and settings.poll_mode == "list":
        every = plan.delay(job.polls + 1)
        if _watched(ctx, account.name, job, every):
            # The list watch is seeing this task: the fallback poll only books its next turn.
            ctx.store.set_due(job.id, now + every)
            poll.apply_async((job_id,), countdown=every)
            return
    if not reserved:
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            poll.apply_async((job_id, True, chain), countdown=wait)
            return
    provider = ctx.providers[account.name]
    try:
        task = provider.get(job.provider_task_id)
    except TransientProviderError as exc:
        # Transient errors back off on their own counter and do not spend the poll budget.
        if exc.throttled:
            ctx.admission.pushed_back(account.name, "query")
        if now >= deadline:
            _fail(
                ctx,
                job,
                "PollDeadlineExceeded",
                f"no answer before the poll deadline: {exc}",
                billed=None,
            )
            return
        if not chain:
            return
        errors = job.transient_errors + 1
        ctx.store.update(
            job, {"transient_errors": errors, "last_error": exc.as_dict()}, while_in=ACTIVE
        )
        delay = backoff(errors - 1, base=settings.retry_base, cap=settings.retry_cap, rand=ctx.rand)
        log.info("job %s: poll error %s, again in %.1fs", job.id, exc, delay)
        ctx.store.set_due(job.id, now + delay)
        poll.apply_async((job_id,), countdown=delay)
        return
    except TerminalProviderError as exc:
        _fail(ctx, job, exc.code, exc.message, billed=None)
        return

    step = next_step(job, task, now, plan, deadline)
    seen: dict[str, Any] = {
        "polls": job.polls + 1,
        "transient_errors": 0,
        "last_error": None,
        "provider_status": task.status,
        # With the zone they are written in, so what reads them needs no setting.
        "provider_times": {**task.times, "utc_offset": provider.utc_offset_hours}
        if task.times
        else None,
    }
    if task.status in ("SUCCEEDED", "FAILED"):
        seconds = task_seconds(task.times)
        if seconds is not None:
            ctx.record_duration(account.name, seconds)
    if isinstance(step, PollAgain):
        if step.mark_running and job.status is Status.SUBMITTED:
            ctx.store.transition(job, Status.RUNNING, seen)
            log.info("job %s: running at the provider", job.id)
        else:
            ctx.store.update(job, seen, while_in=ACTIVE)
        if chain:
            ctx.store.set_due(job.id, now + step.delay)
            poll.apply_async((job_id,), countdown=step.delay)
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
            finish.apply_async((job_id,))
            # The provider's slot is free as soon as its task ends, not when our copy does.
            _ended(ctx, job, task.image_count)
    elif isinstance(step, Fail):
        billed = 0 if task.status == "FAILED" else None
        _fail(ctx, job, step.code, step.message, seen, billed=billed)
    elif isinstance(step, Canceled):
        error = {"code": "Canceled", "message": "the provider reports the task was canceled"}
        if ctx.store.transition(job, Status.CANCELED, {**seen, "error": error}):
            log.info("job %s: canceled at the provider", job.id)
            notify(ctx, job)
        _ended(ctx, job, 0)


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


@app.task(name=FINISH_TASK, bind=True, max_retries=None)
def finish(self: Task, job_id: str) -> None:
    """Stream every result image into S3, then end the job with exactly one event."""
    ctx = get_context()
    job = _load(ctx, job_id)
    if job is None or job.status is not Status.RUNNING or not job.provider_task_id:
        return
    if _lost_too_often(self, ctx, job):
        return
    settings = ctx.settings
    prefix = S3Location.parse_prefix(job.output_uri)
    timeout = (settings.http_connect_timeout, settings.http_read_timeout)
    billed = (job.usage or {}).get("image_count")
    outputs: list[dict[str, Any]] = []
    try:
        for index, raw in enumerate(job.provider_results or []):
            item = ResultItem(**raw)
            if item.url is None:
                error = {"code": item.code or "Unknown", "message": item.message or ""}
                outputs.append({"index": index, "error": error})
                continue
            try:
                target = copy_result(
                    item,
                    index,
                    job_id=job.id,
                    provider_task_id=job.provider_task_id,
                    prefix=prefix,
                    s3=ctx.s3,
                    downloads=ctx.downloads,
                    timeout=timeout,
                    allow_private=settings.allow_private_urls,
                )
            except TerminalProviderError as exc:
                outputs.append({"index": index, "error": exc.as_dict()})
                continue
            outputs.append({"index": index, "uri": str(target)})
    except (TransientStorageError, TransientProviderError) as exc:
        _retry_finish(self, ctx, job, exc)
        return
    except StorageError as exc:
        _fail(ctx, job, "StorageError", str(exc), billed=billed)
        return

    stored = [output for output in outputs if "uri" in output]
    if stored:
        if ctx.store.transition(job, Status.SUCCEEDED, {"outputs": outputs, "error": None}):
            log.info("job %s: succeeded, %d of %d images stored", job.id, len(stored), len(outputs))
            notify(ctx, job)
        _ended(ctx, job, billed)
        return
    first = next((o["error"] for o in outputs if "error" in o), None)
    first = first or {"code": "NoResult", "message": "the provider returned no image"}
    _fail(ctx, job, first["code"], first["message"], {"outputs": outputs}, billed=billed)


def _retry_finish(task: Task, ctx: WorkerContext, job: Job, exc: Exception) -> None:
    """Storage or a download is away: retry with backoff until the finish deadline, which stays
    well inside the 24 hours the provider keeps results, then fail with what went wrong."""
    settings = ctx.settings
    now = ctx.clock()
    started = job.finish_since or now
    if now - started >= settings.finish_deadline:
        code = getattr(exc, "code", None) or "StorageUnavailable"
        billed = (job.usage or {}).get("image_count")
        message = f"results not stored within {settings.finish_deadline:.0f} s: {exc}"
        _fail(ctx, job, code, message, billed=billed)
        return
    attempt = task.request.retries
    delay = backoff(attempt, base=settings.retry_base, cap=settings.retry_cap, rand=ctx.rand)
    log.info("job %s: %s, finish again in %.1fs", job.id, exc, delay)
    ctx.store.set_due(job.id, now + delay)
    raise task.retry(countdown=delay, max_retries=None, exc=None)


@app.task(name=CANCEL_TASK, bind=True, max_retries=None)
def cancel(self: Task, job_id: str, reserved: bool = False) -> None:
    """Cancel at the provider: possible only while its task is PENDING. A cancel call takes a
    turn of the account's query rate."""
    ctx = get_context()
    job = _load(ctx, job_id)
    if job is None or job.status.terminal:
        return
    error = {"code": "Canceled", "message": "canceled at the user's request"}
    if job.status is Status.QUEUED or job.provider_task_id is None:
        if ctx.store.transition(
            job, Status.CANCELED, {"error": error}, allowed_from=[Status.QUEUED]
        ):
            notify(ctx, job)
        _ended(ctx, job, 0)
        return
    account = _account(ctx, job)
    if not reserved:
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            cancel.apply_async((job_id, True), countdown=wait)
            return
    try:
        ctx.providers[account.name].cancel(job.provider_task_id)
    except TransientProviderError as exc:
        if exc.throttled:
            ctx.admission.pushed_back(account.name, "query")
        # The retry books its own query turn again.
        _retry(self, ctx, job, exc, throttled=exc.throttled, args=(job_id, False))
        return
    except TerminalProviderError as exc:
        note = (
            f"the provider cannot cancel a task that has started ({exc.code}); "
            "its result will be delivered"
        )
        ctx.store.update(job, {"cancel_refused": note}, while_in=ACTIVE)
        log.info("job %s: %s", job.id, note)
        return
    if ctx.store.transition(job, Status.CANCELED, {"error": error, "provider_status": "CANCELED"}):
        log.info("job %s: canceled at the provider", job.id)
        notify(ctx, job)
    _ended(ctx, job, 0)
