"""The sweeper's count of losses on a real Redis, with a moved clock: only a re-drive of its own
that never ran while nothing waited in the queue is a loss, and any step that starts resets it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.test_job_lifetime import advance, clean, make_context
from tests.worker_app import workers_sending_to
from wanedit.config.celery import POLL_TASK
from wanedit.states import Status
from wanedit.store.record import Job
from wanedit.workers.context import WorkerContext
from wanedit.workers.steps.common import Delivery, lost_too_often
from wanedit.workers.steps.sweep import sweep

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(redis_url: str) -> Iterator[WorkerContext]:
    context = make_context(redis_url)
    with workers_sending_to(context.settings):
        yield context
    clean(context)


def active_job(ctx: WorkerContext, **fields: object) -> str:
    job_id = uuid.uuid4().hex
    ctx.store.create(job_id, {"prompt": "p", "images": []}, "s3://b/out/")
    job = ctx.store.get(job_id)
    changes = {"provider_task_id": "t1", "provider_status": "RUNNING", "account": "a1", **fields}
    assert ctx.store.transition(job, Status.SUBMITTED, changes)
    ctx.store.set_due(job_id, ctx.clock())
    return job_id


def next_sweep(ctx: WorkerContext, job_id: str, *, lose_messages: bool) -> Job:
    """The next sweep, past the grace; with `lose_messages`, what the last one sent is gone."""
    if lose_messages:
        ctx.redis.delete(ctx.settings.queue)
    advance(ctx, ctx.settings.sweep_grace + 1)
    ctx.redis.delete(ctx.store.keys.sweep_lock)
    sweep(ctx)
    return ctx.store.get(job_id)


def test_a_lost_re_drive_counts_and_any_step_that_starts_resets_the_count(ctx) -> None:
    job_id = active_job(ctx)
    job = next_sweep(ctx, job_id, lose_messages=True)  # the job's own poll was late or lost
    assert (job.redrives, job.losses) == (1, 0)
    job = next_sweep(ctx, job_id, lose_messages=True)  # the poll sent again never ran
    assert (job.redrives, job.losses) == (2, 1)
    job = next_sweep(ctx, job_id, lose_messages=False)  # it is still waiting in the queue: wait too
    assert (job.redrives, job.losses) == (2, 1)
    # The poll it sent starts at last: the job is moving.
    assert not lost_too_often(ctx, job, Delivery(POLL_TASK, "m-1", 0))
    job = next_sweep(ctx, job_id, lose_messages=True)
    assert (job.redrives, job.losses) == (3, 0)
    assert ctx.store.get(job_id).status is Status.SUBMITTED


def test_a_polled_job_is_never_failed_however_many_re_drives_are_lost(ctx) -> None:
    job_id = active_job(ctx)
    for _ in range(3 * ctx.settings.max_losses):
        job = next_sweep(ctx, job_id, lose_messages=True)
    assert job.status is Status.SUBMITTED
    assert job.losses == 3 * ctx.settings.max_losses - 1


def test_a_finish_whose_re_drives_never_run_ends_with_worker_lost(ctx) -> None:
    job_id = active_job(ctx, provider_status="SUCCEEDED")
    for _ in range(ctx.settings.max_losses + 1):
        job = next_sweep(ctx, job_id, lose_messages=True)
    assert job.status is Status.FAILED
    assert job.error is not None and job.error["code"] == "WorkerLost"
