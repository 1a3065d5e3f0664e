"""Figure 2: the cost of admission, the list watch and the sweeper with a large backlog against a
small one: the real step functions, in this process, against a real embedded Redis and the
provider sandbox, with the backlog loaded."""

from __future__ import annotations

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


def measure_backlog(sizes: tuple[int, ...], calls: int) -> list[StepCost]:
    """Each size has its own key prefix (its own backlog, slots and indexes) in one Redis, and
    its own sandbox key; the calls alternate between the sizes, so the machine's noise falls on
    all of them alike."""
    keys = {size: f"sk-scale-{size}" for size in sizes}
    sandbox = SandboxServer(
        SandboxConfig(
            api_keys=tuple(keys.values()),
            duration_min=3600.0,
            duration_max=3600.0,
            submit_rate=1000.0,
            query_rate=1000.0,
        )
    ).start()
    try:
        with servers() as running:
            upload_inputs(running.s3, bucket_made=True)
            image = running.s3.generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": INPUT_KEYS[0]}, ExpiresIn=7200
            )
            contexts = {size: _context(size, keys[size], sandbox.base_url) for size in sizes}
            return _measure(contexts, calls, image)
    finally:
        sandbox.stop()


def _context(size: int, key: str, base_url: str) -> Any:
    from wanedit.config.settings import load_settings
    from wanedit.workers.context import build_context

    account = {
        "name": ACCOUNT,
        "api_key": key,
        "base_url": base_url,
        "submit_rate": 1000,
        "query_rate": 1000,
    }
    settings = load_settings(
        key_prefix=f"scale{size}",
        queue="scale-steps",  # messages the steps send: deleted before each call
        events_stream=f"scale{size}:events",
        accounts_list=[account],
    )
    return build_context(settings)


def _measure(contexts: dict[int, Any], calls: int, image: str) -> list[StepCost]:
    from wanedit.workers.steps.admit import admit_free_slots
    from wanedit.workers.steps.sweep import sweep
    from wanedit.workers.steps.watch import watch

    times: dict[tuple[str, int], list[float]] = {}
    for size, ctx in contexts.items():
        _load_backlog(ctx, size, 0)
    _point_worker_app(next(iter(contexts.values())).settings)  # one queue for all sizes

    def each(step: str, run: Callable[[Any], object], before: Callable[[Any], None]) -> None:
        for _ in range(calls):
            for size, ctx in contexts.items():
                before(ctx)
                started = time.perf_counter()
                run(ctx)
                times.setdefault((step, size), []).append(time.perf_counter() - started)

    def reclaim_slots(ctx: Any) -> None:
        # The slots taken last time expire: the next admission gives them back (the jobs
        # return to the backlog) and admits again, as after a lost submit.
        slots = ctx.store.keys.slots(ACCOUNT)
        ctx.redis.delete(ctx.settings.queue)
        for job_id in ctx.redis.zrange(slots, 0, -1):
            ctx.redis.zadd(slots, {job_id: 0})

    def clear_queue(ctx: Any) -> None:
        ctx.redis.delete(ctx.settings.queue)

    def unlock(ctx: Any) -> None:
        ctx.redis.delete(ctx.settings.queue, ctx.store.keys.sweep_lock)

    each("admission", admit_free_slots, reclaim_slots)
    for ctx in contexts.values():
        reclaim_slots(ctx)
        _in_flight(ctx, image)
    each("list watch", lambda ctx: watch(ctx, ACCOUNT, tick=False, reserved=True), clear_queue)
    each("sweeper", sweep, unlock)
    return [
        StepCost(step, size, len(t), median(t), sum(t) / len(t))
        for (step, size), t in sorted(times.items(), key=lambda item: item[0][1])
    ]


def _point_worker_app(settings: Any) -> None:
    """Messages the steps send go to this run's Redis (the worker app reads its broker once)."""
    from wanedit.config.celery import celery_config
    from wanedit.workers.celery_app import app

    app.conf.update(celery_config(settings))
    app._pool = None
    app.amqp._producer_pool = None


def _in_flight(ctx: Any, image: str) -> None:
    """Admit the best jobs and create their tasks on the sandbox: the account's slots full, the
    tasks running for an hour, each job's look due."""
    from wanedit.states import Status

    result = ctx.admission.admit()
    client = ctx.providers[ACCOUNT]
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


if __name__ == "__main__":
    import sys

    sizes = tuple(int(n) for n in sys.argv[1:]) or (1000, 100_000)
    for cost in measure_backlog(sizes, calls=50):
        print(cost)
