"""Figure 2: the cost of admission, the list watch and the sweeper with a large backlog against a
small one: the real step functions, in this process, against a real embedded Redis and the
provider sandbox, with the backlog loaded."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from bench.common import BUCKET, INPUT_KEYS, upload_inputs
from bench.scale_servers import servers
from wanedit.sandbox.server import SandboxConfig, SandboxServer

ACCOUNT = "a1"
KEY = "sk-scale-a1"
LOAD_CHUNK = 1000
# The steps under test, with what each one does per call.
STEPS = {
    "admission": "admit_free_slots: the admit script over the backlog, 5 submit messages sent",
    "list watch": "watch: 5 tasks in flight, one list call to the sandbox, their records read",
    "sweeper": "sweep: the lock, the lost and overdue indexes, the queue length",
}


@dataclass(frozen=True)
class StepCost:
    step: str
    backlog: int
    calls: int
    median_s: float
    mean_s: float


def _load_backlog(ctx: Any, count: int, start: int) -> None:
    from wanedit.store.jobs import NewJob

    backlog = ctx.store.keys.backlog("batch")
    for first in range(start, start + count, LOAD_CHUNK):
        jobs = [
            NewJob(
                uuid.uuid4().hex,
                {
                    "prompt": f"backlog edit {n}",
                    "images": [f"https://images.example.com/{n}.png"],
                    "priority": "batch",
                },
                "s3://wanedit-bench/out/",
                backlog=backlog,
            )
            for n in range(first, min(first + LOAD_CHUNK, start + count))
        ]
        ctx.store.create_many(jobs)


def _timed(calls: int, step: Callable[[], None], between: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(calls):
        between()
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return times


def measure_backlog(sizes: tuple[int, ...], calls: int) -> list[StepCost]:
    """Per size, in increasing order on one Redis (the backlog grows between them): the time per
    call of each step."""
    sandbox = SandboxServer(
        SandboxConfig(api_keys=(KEY,), duration_min=3600.0, duration_max=3600.0, query_rate=1000.0)
    ).start()
    accounts = [
        {
            "name": ACCOUNT,
            "api_key": KEY,
            "base_url": sandbox.base_url,
            "submit_rate": 1000,
            "query_rate": 1000,
        }
    ]
    try:
        with servers({"WANEDIT_ACCOUNTS": json.dumps(accounts)}) as running:
            upload_inputs(running.s3, bucket_made=True)
            image = running.s3.generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": INPUT_KEYS[0]}, ExpiresIn=7200
            )
            return _measure(sizes, calls, image)
    finally:
        sandbox.stop()


def _measure(sizes: tuple[int, ...], calls: int, image: str) -> list[StepCost]:
    from wanedit.config.settings import get_settings
    from wanedit.workers.context import build_context
    from wanedit.workers.steps.admit import admit_free_slots
    from wanedit.workers.steps.sweep import sweep
    from wanedit.workers.steps.watch import watch

    settings = get_settings()
    _point_worker_app(settings)
    ctx = build_context(settings)
    slots = ctx.store.keys.slots(ACCOUNT)
    loaded = 0
    costs: list[StepCost] = []
    for size in sorted(sizes):
        _load_backlog(ctx, size - loaded, loaded)
        loaded = size

        def reclaim_slots() -> None:
            # The slots taken last time expire: the next admission gives them back (the
            # jobs return to the backlog) and admits again, as after a lost submit.
            ctx.redis.delete(settings.queue)
            for job_id in ctx.redis.zrange(slots, 0, -1):
                ctx.redis.zadd(slots, {job_id: 0})

        admit_times = _timed(calls, lambda: admit_free_slots(ctx), reclaim_slots)
        reclaim_slots()
        in_flight = _in_flight(ctx, image)

        def clear_queue() -> None:
            ctx.redis.delete(settings.queue)

        watch_times = _timed(
            calls, lambda: watch(ctx, ACCOUNT, tick=False, reserved=True), clear_queue
        )

        def unlock() -> None:
            ctx.redis.delete(settings.queue, ctx.store.keys.sweep_lock)

        sweep_times = _timed(calls, lambda: sweep(ctx), unlock)
        _undo_in_flight(ctx, in_flight)
        for step, times in (
            ("admission", admit_times),
            ("list watch", watch_times),
            ("sweeper", sweep_times),
        ):
            costs.append(StepCost(step, size, len(times), median(times), sum(times) / len(times)))
    return costs


def _point_worker_app(settings: Any) -> None:
    """Messages the steps send go to this run's Redis (the worker app reads its broker once)."""
    from wanedit.config.celery import celery_config
    from wanedit.workers.celery_app import app

    app.conf.update(celery_config(settings))
    app._pool = None
    app.amqp._producer_pool = None


def _in_flight(ctx: Any, image: str) -> list[str]:
    """Admit the best jobs and create their tasks on the sandbox: the account's slots full, the
    tasks running for an hour, each job's look due."""
    from wanedit.states import Status

    result = ctx.admission.admit()
    client = ctx.providers[ACCOUNT]
    ids = []
    for item in result.admitted:
        job = ctx.store.get(item.job_id)
        task_id, _ = client.create(
            ctx.settings.model,
            {"input": {"prompt": "in flight", "images": [image]}},
        )
        now = ctx.clock()
        changes = {
            "provider_task_id": task_id,
            "provider_status": "PENDING",
            "account": ACCOUNT,
            "create_sent_at": now,
            "watch_at": now - 1,
        }
        ctx.store.record_task(job, task_id, changes, due=now + 3600)
        ctx.store.transition(ctx.store.get(job.id), Status.RUNNING, {"provider_status": "RUNNING"})
        ids.append(job.id)
    return ids


def _undo_in_flight(ctx: Any, job_ids: list[str]) -> None:
    """The jobs in flight end (canceled): the next size starts with the slots free."""
    from wanedit.states import Status

    for job_id in job_ids:
        ctx.store.transition(ctx.store.get(job_id), Status.CANCELED, {})
        ctx.admission.release(job_id, ACCOUNT, 0)
    ctx.redis.delete(ctx.settings.queue)


if __name__ == "__main__":
    import sys

    sizes = tuple(int(n) for n in sys.argv[1:]) or (1000, 100_000)
    for cost in measure_backlog(sizes, calls=100):
        print(cost)
