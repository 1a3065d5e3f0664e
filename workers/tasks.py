"""The Celery tasks: a thin shell of I/O around the pure decisions in `steps` and `schedule`.

Every task takes a job id, loads the job, does one piece of I/O and schedules what comes next.
Each may run twice: transitions are compare-and-set, keys are deterministic, and the event is
written by the same atomic step as the terminal status. No task sleeps: waiting is a countdown.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from celery import Task

from config.accounts import Account
from config.celery import (
    ADMIT_TASK,
    CANCEL_TASK,
    FINISH_TASK,
    POLL_TASK,
    SUBMIT_TASK,
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
from wanedit.jobs import Job
from wanedit.request import EditRequest
from wanedit.states import Status
from wanedit.storage import S3Location
from workers.app import app
from workers.context import WorkerContext, get_context
from workers.provider import ResultItem, task_seconds
from workers.schedule import PollPolicy, backoff
from workers.steps import Canceled, Fail, Finish, PollAgain, deadline_of, next_step
from workers.transfer import TransientStorageError, copy_result, resolve_image

log = logging.getLogger("wanedit.workers")
ACTIVE = (Status.SUBMITTED, Status.RUNNING)
# How soon admission looks again when it could not admit everything, by what blocked it.
ADMIT_TICK = {"rate": 0.25, "slots": 2.0, "cap": 30.0, "": 0.05}
QUERY_WAIT_MIN = 0.005


def _load(ctx: WorkerContext, job_id: str) -> Job | None:
    try:
        return ctx.store.get(job_id)
    except JobNotFound:
        log.warning("job %s: no record (expired or never created); dropping the message", job_id)
        return None


def _account(ctx: WorkerContext, job: Job) -> Account:
    return ctx.settings.account(job.account or ctx.settings.accounts[0].name)


def _ended(ctx: WorkerContext, job: Job, billed: int | None) -> None:
    """When the provider task has ended: give its slot back and let the next job in. Safe to
    call again (only the first release counts)."""
    if job.account and ctx.admission.release(job.id, job.account, billed):
        admit.apply_async()


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
    _ended(ctx, job, billed)


def _retry(task: Task, ctx: WorkerContext, job: Job, exc: Exception, *, throttled: bool) -> None:
    """Retry the task with backoff; give up after the retry budget (throttling: the deadline)."""
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
    raise task.retry(countdown=delay, max_retries=None, exc=None)


@app.task(name=ADMIT_TASK)
def admit(tick: bool = False) -> None:
    """Hand free provider slots to waiting jobs, best first, each at its rate-limited moment.

    Runs when a producer nudges, when a slot is given back, and as a follow-up tick while jobs
    wait (one tick chain at a time)."""
    ctx = get_context()
    ctx.admission.nudge_taken()
    if tick:
        ctx.admission.woke("admit")
    result = ctx.admission.admit()
    for item in result.admitted:
        submit.apply_async((item.job_id, item.account), countdown=item.delay)
    if result.reclaimed:
        log.warning("admission reclaimed %d expired slot leases", result.reclaimed)
    if result.waiting:
        delay = ADMIT_TICK.get(result.blocked_by, 1.0)
        if ctx.admission.book("admit", delay):
            admit.apply_async((True,), countdown=delay)


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
    settings = ctx.settings
    try:
        account = settings.account(account_name)
        provider = ctx.providers[account.name]
        request = EditRequest.model_validate(job.request)
        images = [
            resolve_image(source, ctx.s3, settings.image_transport, settings.presign_ttl_seconds)
            for source in request.images
        ]
        task_id, request_id = provider.create(settings.model, request.provider_input(images))
    except OutcomeUnknown as exc:
        _fail(
            ctx,
            job,
            "CreateOutcomeUnknown",
            f"the create call's answer was lost ({exc.message}); it was not re-sent, "
            "so the edit is never paid twice",
            billed=None,
        )
        return
    except TransientProviderError as exc:
        if exc.throttled:
            ctx.admission.pushed_back(account_name, "submit")
        _retry(self, ctx, job, exc, throttled=exc.throttled)
        return
    except TerminalProviderError as exc:
        _fail(ctx, job, exc.code, exc.message)
        return
    except TransientStorageError as exc:
        _retry(self, ctx, job, exc, throttled=False)
        return
    except (StorageError, ConfigError, ValueError) as exc:
        _fail(ctx, job, "InputUnavailable", str(exc))
        return

    plan = ctx.plan(account.name)
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
        ctx.store.update(job, {"provider_task_id": task_id}, while_in=())
        log.warning("job %s: canceled during create; canceling provider task %s", job.id, task_id)
        try:
            provider.cancel(task_id)
        except ProviderError as exc:
            log.warning("job %s: provider cancel refused: %s", job.id, exc)
        return
    log.info("job %s: submitted as provider task %s on %s", job.id, task_id, account.name)
    poll.apply_async((job_id,), countdown=plan.polls.first_delay)
    if settings.poll_mode == "list":
        _rewatch(ctx, account.name, plan.watch_after)


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
    if len(due) == 1:
        # One task to look at: its own query costs the same as a list and brings its results.
        poll.run(due[0].id, True, False)
        _rewatch(ctx, account.name, plan.watch_interval)
        return
    try:
        statuses = ctx.providers[account.name].list_recent(ctx.settings.model)
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
    for job in due:
        status = statuses.get(job.provider_task_id or "")
        if status in ("SUCCEEDED", "FAILED", "CANCELED"):
            wait = ctx.admission.reserve_query(account)
            if wait > QUERY_WAIT_MIN:
                poll.apply_async((job.id, True, False), countdown=wait)
            else:
                poll.run(job.id, True, False)
        elif status == "RUNNING" and job.status is Status.SUBMITTED:
            ctx.store.transition(job, Status.RUNNING, {"provider_status": "RUNNING"})
    _rewatch(ctx, account.name, plan.watch_interval)


@app.task(name=POLL_TASK, bind=True, max_retries=None)
def poll(self: Task, job_id: str, reserved: bool = False, chain: bool = True) -> None:
    """Query the provider task once, within the account's query rate, and act on the answer.

    `chain` polls are the task's own schedule and book the next one; the list watch runs
    one-off polls (chain=False) that only act on what they see."""
    ctx = get_context()
    job = _load(ctx, job_id)
    if job is None or job.status not in ACTIVE or job.provider_task_id is None:
        return
    if job.provider_status == "SUCCEEDED":
        # An earlier poll saw success but may have died before handing over: hand over again.
        finish.apply_async((job_id,))
        return
    account = _account(ctx, job)
    ctx.admission.claim(job.id, account.name)  # renew the slot's lease
    if not reserved:
        wait = ctx.admission.reserve_query(account)
        if wait > QUERY_WAIT_MIN:
            poll.apply_async((job_id, True, chain), countdown=wait)
            return
    settings = ctx.settings
    now = ctx.clock()
    deadline = deadline_of(job, settings.poll_deadline)
    try:
        task = ctx.providers[account.name].get(job.provider_task_id)
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
        ctx.store.update(job, {"transient_errors": errors}, while_in=ACTIVE)
        delay = backoff(errors - 1, base=settings.retry_base, cap=settings.retry_cap, rand=ctx.rand)
        log.info("job %s: poll error %s, again in %.1fs", job.id, exc, delay)
        poll.apply_async((job_id,), countdown=delay)
        return
    except TerminalProviderError as exc:
        _fail(ctx, job, exc.code, exc.message, billed=None)
        return

    plan = PollPolicy(**job.poll_plan) if job.poll_plan else ctx.poll_policy
    step = next_step(job, task, now, plan, deadline)
    seen: dict[str, Any] = {
        "polls": job.polls + 1,
        "transient_errors": 0,
        "provider_status": task.status,
        "provider_times": task.times or None,
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
            poll.apply_async((job_id,), countdown=step.delay)
    elif isinstance(step, Finish):
        seen["provider_results"] = [asdict(item) for item in task.results]
        seen["usage"] = _usage(task.image_count, account)
        if job.status is Status.SUBMITTED:
            moved = ctx.store.transition(job, Status.RUNNING, seen)
        else:
            moved = ctx.store.update(job, seen, while_in=ACTIVE)
        if moved:
            log.info("job %s: provider succeeded, copying %d results", job.id, len(task.results))
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
        _ended(ctx, job, 0)


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
        _retry(self, ctx, job, exc, throttled=False)
        return
    except StorageError as exc:
        _fail(ctx, job, "StorageError", str(exc), billed=billed)
        return

    stored = [output for output in outputs if "uri" in output]
    if stored:
        if ctx.store.transition(job, Status.SUCCEEDED, {"outputs": outputs, "error": None}):
            log.info("job %s: succeeded, %d of %d images stored", job.id, len(stored), len(outputs))
        _ended(ctx, job, billed)
        return
    first = next((o["error"] for o in outputs if "error" in o), None)
    first = first or {"code": "NoResult", "message": "the provider returned no image"}
    _fail(ctx, job, first["code"], first["message"], {"outputs": outputs}, billed=billed)


@app.task(name=CANCEL_TASK, bind=True, max_retries=None)
def cancel(self: Task, job_id: str) -> None:
    """Cancel at the provider: possible only while its task is PENDING."""
    ctx = get_context()
    job = _load(ctx, job_id)
    if job is None or job.status.terminal:
        return
    error = {"code": "Canceled", "message": "canceled at the user's request"}
    if job.status is Status.QUEUED or job.provider_task_id is None:
        ctx.store.transition(job, Status.CANCELED, {"error": error}, allowed_from=[Status.QUEUED])
        _ended(ctx, job, 0)
        return
    account = _account(ctx, job)
    try:
        ctx.providers[account.name].cancel(job.provider_task_id)
    except TransientProviderError as exc:
        _retry(self, ctx, job, exc, throttled=exc.throttled)
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
    _ended(ctx, job, 0)
