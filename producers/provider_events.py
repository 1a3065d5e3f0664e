"""`wanedit provider-events`: the receiver of the provider's task-end events (EventBridge HTTP
target). An event only says which task to look at: its job's result query is sent at once (the
poll task, by name, within the account's query rate) and the query's answer moves the job.

POST /events takes one event; GET /healthz answers 200 while Redis does. The token
(WANEDIT_PROVIDER_EVENTS_TOKEN) comes as `?token=` in the target URL or as a bearer token.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from typing import TYPE_CHECKING

import redis
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from wanedit.config.celery import POLL_TASK
from wanedit.errors import BackendUnavailable, InvalidEvent, JobNotFound
from wanedit.intake.context import ProducerContext
from wanedit.metrics import field_name
from wanedit.producers.http_server import (
    HTTP_CONNECTIONS_MAX,
    HTTP_IDLE_TIMEOUT,
    HTTP_REQUEST_DEADLINE,
    BodyProblem,
    answer,
    read_body,
    serve,
)
from wanedit.producers.provider_event import EventOutcome, ProviderEvent, outcome_for, parse_event
from wanedit.store.counters import Counters
from wanedit.store.keys import Keys
from wanedit.store.record import Job

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger("wanedit.provider_events")

# An event id is remembered this long: EventBridge's retries and copies come well within it.
EVENT_MEMORY = 86400
# A task no job has recorded yet is remembered this long: its create's answer, or the look
# that adopts a create whose answer was lost, comes within it.
EARLY_MEMORY = 600
# That an event named a task is remembered this long: far beyond any task's end.
SEEN_MEMORY = 3600


def count(ctx: ProducerContext, outcome: EventOutcome) -> None:
    """One more event with this outcome (never raises: a metric is not worth an answer)."""
    Counters(ctx.redis, key_prefix=ctx.settings.key_prefix).add(
        {field_name("provider_events_total", outcome=outcome.value): 1}
    )


def _owner(ctx: ProducerContext, keys: Keys, task_id: str) -> tuple[str | None, str | None]:
    """The job that owns the task, and its account (None, None: no job of ours has it)."""
    with ctx.redis.pipeline(transaction=False) as pipe:
        for account in ctx.settings.accounts:
            pipe.hget(keys.provider_tasks(account.name), task_id)
        found = pipe.execute()
    for account, job_id in zip(ctx.settings.accounts, found, strict=True):
        if job_id:
            return str(job_id), account.name
    return None, None


def _job(ctx: ProducerContext, job_id: str) -> Job | None:
    try:
        return ctx.store.get(job_id)
    except JobNotFound:
        return None


def _keep_early(ctx: ProducerContext, keys: Keys, event: ProviderEvent) -> str | None:
    """Keep the task id of an event no job owns, for a create whose answer is still on its way:
    recording the task takes the mark and looks at once. If the task was recorded meanwhile, the
    first of the two to take the mark sends the look; this returns the job id when it is us."""
    early = keys.provider_event_early(event.task_id)
    ctx.redis.set(early, event.id, ex=EARLY_MEMORY)
    job_id, _account = _owner(ctx, keys, event.task_id)
    job = _job(ctx, job_id) if job_id else None
    if job is None or job.provider_task_id != event.task_id:
        return None  # not recorded yet: the worker that records it takes the mark
    return job.id if ctx.redis.getdel(early) is not None else None


def _forget(ctx: ProducerContext, keys: Keys, event: ProviderEvent) -> None:
    """Not handled: forget the event's id, so its next delivery is."""
    with contextlib.suppress(redis.RedisError):
        ctx.redis.delete(keys.provider_event(event.id))


def handle(ctx: ProducerContext, event: ProviderEvent) -> EventOutcome:
    """Act on one well-formed event: at most one query is sent, and nothing else changes.
    Raises BackendUnavailable when Redis or the broker is away (the sender tries again)."""
    keys = ctx.store.keys
    try:
        first = bool(ctx.redis.set(keys.provider_event(event.id), "1", nx=True, ex=EVENT_MEMORY))
        if first:
            # The task's end was announced: the worker that sees it end counts no missed event.
            ctx.redis.set(keys.provider_event_seen(event.task_id), "1", ex=SEEN_MEMORY)
        job_id, _account = _owner(ctx, keys, event.task_id) if first else (None, None)
        job = _job(ctx, job_id) if job_id else None
        outcome = outcome_for(
            first_time=first,
            job_id=job_id,
            job_status=job.status.value if job else None,
            provider_status=job.provider_status if job else None,
        )
        if outcome is EventOutcome.UNKNOWN and job_id is None:
            job_id = _keep_early(ctx, keys, event)
            if job_id is not None:
                outcome = EventOutcome.POLLED
    except redis.RedisError as exc:
        _forget(ctx, keys, event)
        raise BackendUnavailable(f"Redis cannot be reached: {type(exc).__name__}") from None
    if outcome is EventOutcome.POLLED and job_id is not None:
        try:
            # A one-off poll (not reserved, not a chain): it waits for the account's query turn.
            ctx.celery.send_task(POLL_TASK, args=[job_id, False, False], queue=ctx.settings.queue)
        except Exception as exc:
            _forget(ctx, keys, event)
            raise BackendUnavailable(
                f"the broker cannot be reached: {type(exc).__name__}"
            ) from None
        log.info(
            "job %s: provider task %s ended (event %s); looking", job_id, event.task_id, event.id
        )
    else:
        log.info("event %s for task %s: %s", event.id, event.task_id, outcome.value)
    return outcome


def _authorised(request: Request, token: str) -> bool:
    given = request.args.get("token") or request.headers.get("Authorization", "").removeprefix(
        "Bearer "
    )
    return hmac.compare_digest(given.encode(), token.encode())


def receiver(ctx: ProducerContext) -> WSGIApplication:
    """The receiver as a WSGI application: POST /events answers 202 with the outcome, 400
    naming the field of a malformed event, 401 without the token, 408/413 for a body too slow or
    too large, 503 when Redis or the broker is away (EventBridge sends it again)."""
    secret = ctx.settings.provider_events_token
    token = secret.get_secret_value() if secret is not None else None

    @Request.application
    def application(request: Request) -> Response:
        if request.path == "/healthz":
            return _health(ctx)
        if request.path != "/events":
            return answer(404, {"error": "POST events to /events"})
        if request.method != "POST":
            return answer(405, {"error": "POST an event"}, allow="POST")
        if token is None or not _authorised(request, token):
            count(ctx, EventOutcome.UNAUTHORIZED)
            return answer(401, {"error": "a valid token is required (?token= or bearer)"})
        try:
            body = read_body(request)
        except BodyProblem as problem:
            count(ctx, EventOutcome.REJECTED)
            return problem.response
        try:
            event = parse_event(body)
        except InvalidEvent as exc:
            log.warning("event from %s rejected: %s", request.remote_addr, exc)
            count(ctx, EventOutcome.REJECTED)
            return answer(400, {"error": str(exc)})
        try:
            outcome = handle(ctx, event)
        except BackendUnavailable as exc:
            log.warning("event %s: kept for redelivery: %s", event.id, exc)
            return answer(503, {"error": str(exc)}, **{"Retry-After": "1"})
        except Exception as exc:
            # One bad event must not stop the receiver; its answer names the error's type only.
            log.error("event %s: could not be handled (%s)", event.id, type(exc).__name__)
            return answer(500, {"error": f"could not be handled ({type(exc).__name__})"})
        count(ctx, outcome)
        return answer(202, {"outcome": outcome.value})

    return application


def _health(ctx: ProducerContext) -> Response:
    try:
        ctx.redis.ping()
    except redis.RedisError as exc:
        return answer(503, {"ok": False, "error": f"Redis: {type(exc).__name__}"})
    return answer(200, {"ok": True})


def http_server(
    ctx: ProducerContext,
    host: str,
    port: int,
    *,
    idle_timeout: float = HTTP_IDLE_TIMEOUT,
    request_deadline: float = HTTP_REQUEST_DEADLINE,
    connections: int = HTTP_CONNECTIONS_MAX,
) -> BaseWSGIServer:
    """The threaded server around `receiver`, bound and listening."""
    return serve(
        host,
        port,
        receiver(ctx),
        idle_timeout=idle_timeout,
        request_deadline=request_deadline,
        connections=connections,
        logger=log,
    )
