"""Cancel races on a real Redis, forced with the store a context lets you inject: the job moves
on between a cancel's read and its compare-and-set."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wanedit.config.clients import make_redis
from wanedit.config.settings import Settings, load_settings
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers import cancel_job
from wanedit.states import Status
from wanedit.store.events import read_events
from wanedit.store.jobs import JobStore
from wanedit.workers.client import make_session
from wanedit.workers.context import WorkerContext
from wanedit.workers.steps.cancel import cancel
from wanedit.workers.steps.common import Delivery

pytestmark = pytest.mark.integration


class RacingStore(JobStore):
    """A job store whose next transition is preceded by `before_transition` (another process
    moving the job in the gap between a read and a compare-and-set)."""

    before_transition: Callable[[], None] | None = None

    def transition(self, *args: Any, **kwargs: Any) -> bool:
        hook, self.before_transition = self.before_transition, None
        if hook is not None:
            hook()
        return super().transition(*args, **kwargs)


def racing_store(settings: Settings, client: Any) -> RacingStore:
    return RacingStore(
        client,
        key_prefix=settings.key_prefix,
        events_stream=settings.events_stream,
        events_maxlen=settings.events_maxlen,
        ttl_seconds=settings.job_ttl_seconds,
    )


@pytest.fixture
def producer(redis_url: str) -> Iterator[ProducerContext]:
    tag = f"cancel-race-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        redis_url=redis_url, key_prefix=tag, queue=tag, events_stream=f"{tag}:events"
    )
    context = build_context(settings)
    context = dataclasses.replace(context, store=racing_store(settings, context.redis))
    yield context
    for key in context.redis.scan_iter(f"{tag}*"):
        context.redis.delete(key)


def admitted_job(ctx: Any, n: int = 1) -> str:
    """A queued job that admission gave a slot (and reserved its images for); no create yet."""
    job_id = uuid.uuid4().hex
    ctx.store.create(
        job_id,
        {"prompt": "p", "images": ["s3://b/in.png"], "n": n},
        "s3://b/out/",
        backlog=ctx.admission.keys.backlog("interactive"),
    )
    assert [item.job_id for item in ctx.admission.admit().admitted] == [job_id]
    return job_id


def submitted_by_another_process(ctx: Any, job_id: str) -> Callable[[], None]:
    def move() -> None:
        job = ctx.store.get(job_id)
        assert ctx.store.transition(job, Status.SUBMITTED, {"provider_task_id": "task-1"})

    return move


def events_of(ctx: Any, job_id: str) -> list[str]:
    stream = ctx.settings.events_stream
    return [
        event["type"] for _, event in read_events(ctx.redis, stream) if event["job_id"] == job_id
    ]


def test_cancel_job_never_cancels_a_job_submitted_after_it_was_read(producer):
    job_id = admitted_job(producer)
    producer.store.before_transition = submitted_by_another_process(producer, job_id)

    answer = cancel_job(job_id, context=producer)

    assert answer["status"] == "submitted"
    assert answer["cancel_requested"] is True
    job = producer.store.get(job_id)
    assert (job.status, job.provider_task_id) == (Status.SUBMITTED, "task-1")
    assert events_of(producer, job_id) == []


def test_canceling_an_admitted_job_gives_its_slot_and_reservation_back(producer):
    """Canceled before any create: the slot is free at once and the day's spend is 0."""
    job_id = admitted_job(producer, n=2)
    assert producer.admission.spent_today()["total"] == 2

    answer = cancel_job(job_id, context=producer)

    assert answer["status"] == "canceled"
    assert producer.admission.in_flight("default") == 0
    assert producer.admission.spent_today()["total"] == 0
    assert events_of(producer, job_id) == ["job.canceled"]


def worker_context(producer: ProducerContext) -> WorkerContext:
    settings = producer.settings
    return WorkerContext(
        settings=settings,
        redis=make_redis(settings),
        store=racing_store(settings, producer.redis),
        admission=producer.admission,
        providers={},
        s3=None,
        downloads=make_session(),
    )


def test_the_cancel_task_frees_a_slot_only_when_its_own_transition_won(producer):
    """The job is recorded submitted between the cancel task's read and its compare-and-set:
    the task does not end the job, and its slot and reservation stay with it (the step that
    recorded the task saw the cancel request and cancels it at the provider)."""
    ctx = worker_context(producer)
    job_id = admitted_job(producer)
    assert isinstance(ctx.store, RacingStore)
    ctx.store.before_transition = submitted_by_another_process(producer, job_id)

    cancel(ctx, job_id, False, Delivery("wanedit.cancel"))

    job = producer.store.get(job_id)
    assert job.status is Status.SUBMITTED
    assert job.cancel_requested
    assert producer.admission.in_flight("default") == 1
    assert producer.admission.spent_today()["total"] == 1
    assert events_of(producer, job_id) == []
