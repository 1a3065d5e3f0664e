"""Scheduled batches on real Redis and S3: one run per schedule slot, however many beats fire."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from tests.conftest import make_image
from tests.e2e.conftest import BUCKET
from tests.worker_app import workers_sending_to
from wanedit.config.celery import BATCH_TASK
from wanedit.sandbox.stack import patched_env

pytestmark = pytest.mark.integration

SLOT = "2026-11-25T02:30:00+00:00"


@pytest.fixture
def scheduled(stack_env, worker, s3):
    """The `wanedit.batch` task in this process, with one schedule configured."""
    from wanedit.config.settings import get_settings
    from wanedit.intake.context import reset_context as reset_producer
    from wanedit.workers.context import reset_context as reset_worker

    s3.put_object(Bucket=BUCKET, Key="sched/in/1.png", Body=make_image(512, 512, (10, 90, 200)))
    lines = [
        {"prompt": "Make it autumn", "images": [f"s3://{BUCKET}/sched/in/1.png"]},
        {"prompt": "Make it winter", "images": [f"s3://{BUCKET}/sched/in/1.png"], "seed": 3},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    s3.put_object(Bucket=BUCKET, Key="sched/manifest.jsonl", Body=body.encode())
    schedule = {
        "name": "nightly",
        "cron": "30 2 * * *",
        "manifest": f"s3://{BUCKET}/sched/manifest.jsonl",
        "output": f"s3://{BUCKET}/sched-out/",
    }

    def reset() -> None:
        get_settings.cache_clear()
        reset_producer()
        reset_worker()

    with patched_env({"WANEDIT_BATCH_SCHEDULES": json.dumps([schedule])}):
        reset()
        from wanedit.workers.batches import run_scheduled_batch

        try:
            # The task runs in this process: the chunks it sends go to this stack's broker, even
            # when an earlier test configured the worker app of this process otherwise.
            with workers_sending_to(get_settings()):
                yield run_scheduled_batch
        finally:
            reset()
    reset()


def wait_over(context, batch_id: str, timeout: float = 120) -> dict[str, str]:
    """The batch's info hash once its last chunk has run."""
    deadline = time.monotonic() + timeout
    key = context.store.keys.batch(batch_id).info
    while not context.redis.hget(key, "finished"):
        assert time.monotonic() < deadline, context.redis.hgetall(key)
        time.sleep(0.1)
    return context.redis.hgetall(key)


def test_two_beats_for_one_slot_run_the_manifest_once(scheduled, producer):
    from wanedit.intake.batch import batch_status

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: scheduled.run("nightly", SLOT), range(2)))
    assert sorted(results, key=lambda result: result is None) == ["nightly-20261125T0230Z", None]
    wait_over(producer, "nightly-20261125T0230Z")
    assert scheduled.run("nightly", SLOT) is None  # a redelivered message, later

    status = batch_status("nightly-20261125T0230Z")
    assert (status["total"], status["enqueued"], status["invalid"]) == (2, 2, 0)
    assert status["output"] == f"s3://{BUCKET}/sched-out/nightly-20261125T0230Z/"

    # The next night is its own batch, even with the same manifest.
    assert scheduled.run("nightly", "2026-11-26T02:30:00+00:00") == "nightly-20261126T0230Z"
    wait_over(producer, "nightly-20261126T0230Z")
    assert batch_status("nightly-20261126T0230Z")["enqueued"] == 2


def test_a_slot_whose_run_was_cut_off_runs_again_when_sent_again(scheduled, producer, s3):
    """The slot's lock is held only while the batch runs: a run that stopped (here: its manifest
    was not there yet) is resumed by sending the slot again, and a finished one is not rerun."""
    slot, batch_id = "2026-11-27T02:30:00+00:00", "nightly-20261127T0230Z"
    body = s3.get_object(Bucket=BUCKET, Key="sched/manifest.jsonl")["Body"].read()
    s3.delete_object(Bucket=BUCKET, Key="sched/manifest.jsonl")
    try:
        with contextlib.suppress(Exception):
            scheduled.run("nightly", slot)
        key = producer.store.keys.batch(batch_id).info
        deadline = time.monotonic() + 60
        while not producer.redis.hget(key, "error"):
            assert time.monotonic() < deadline, "the chunk did not run"
            time.sleep(0.1)
    finally:
        s3.put_object(Bucket=BUCKET, Key="sched/manifest.jsonl", Body=body)
    assert producer.redis.hget(key, "error") == (
        f"manifest: s3://{BUCKET}/sched/manifest.jsonl does not exist (NoSuchKey)"
    )
    assert not producer.redis.exists(producer.store.keys.batch_slot(batch_id))

    assert scheduled.run("nightly", slot) == batch_id
    info = wait_over(producer, batch_id)
    assert (info["total"], info["enqueued"], info["invalid"], info["read_all"]) == (
        "2",
        "2",
        "0",
        "1",
    )
    assert "error" not in info
    assert not producer.redis.exists(producer.store.keys.batch_slot(batch_id))
    assert scheduled.run("nightly", slot) is None  # over: not run a second time


def test_a_running_batch_is_not_started_twice_until_its_lock_lapses(scheduled, producer):
    """A runner holds the lock (as a chunk killed with its worker would, until its lease ends):
    the slot sent again does nothing; once the lease has run out, it resumes the batch."""
    from wanedit.intake.batch import begin_scheduled

    slot, batch_id = "2026-11-28T02:30:00+00:00", "nightly-20261128T0230Z"
    schedule = producer.settings.batch_schedule("nightly")
    assert begin_scheduled(
        batch_id, schedule.manifest, schedule.output, "lost-runner", lease=900, context=producer
    )
    lock = producer.store.keys.batch_slot(batch_id)
    assert 0 < producer.redis.ttl(lock) <= 900
    assert scheduled.run("nightly", slot) is None
    producer.redis.pexpire(lock, 1)  # the lease runs out
    time.sleep(0.01)
    assert scheduled.run("nightly", slot) == batch_id
    info = wait_over(producer, batch_id)
    assert (info["total"], info["enqueued"]) == ("2", "2")


def _pool_children(pid: int) -> list[int]:
    """The pids of a process's children (the worker's pool processes)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.append(int(stat.parent.name))
    return children


@pytest.fixture
def chunked(stack_env, sandbox, s3, run_id, tmp_path):
    """A worker of its own whose batches run in chunks of 40 lines, with a 300-line schedule;
    a daily cap of 1 image keeps the provider out of it (the jobs wait in the backlog)."""
    from tests.e2e.conftest import own_stack
    from wanedit.sandbox.stack import Worker

    tag = f"chunks-{run_id}-{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=BUCKET, Key=f"{tag}/in.png", Body=make_image(512, 512, (10, 90, 200)))
    lines = [
        {"prompt": f"Edit {number}", "images": [f"s3://{BUCKET}/{tag}/in.png"], "seed": number}
        for number in range(300)
    ]
    lines[7]["n"] = 9  # one bad line
    body = "".join(json.dumps(line) + "\n" for line in lines)
    s3.put_object(Bucket=BUCKET, Key=f"{tag}/manifest.jsonl", Body=body.encode())
    schedule = {
        "name": "big",
        "cron": "0 3 * * *",
        "manifest": f"s3://{BUCKET}/{tag}/manifest.jsonl",
    }
    env, context = own_stack(
        stack_env,
        tag,
        sandbox.base_url,
        {
            "WANEDIT_BATCH_SCHEDULES": json.dumps([schedule]),
            "WANEDIT_BATCH_CHUNK_LINES": "40",
            "WANEDIT_DAILY_IMAGE_CAP": "1",
        },
    )
    worker = Worker(env, concurrency=1, log_path=tmp_path / "worker.log", cwd=Path.cwd()).start()
    try:
        yield worker, context
    finally:
        worker.stop()
        print(worker.tail(40))


def _assert_each_line_made_one_job(context, batch_id: str) -> None:
    keys = context.store.keys.batch(batch_id)
    info = wait_over(context, batch_id)
    assert (info["total"], info["enqueued"], info["invalid"]) == ("300", "299", "1")
    jobs = context.redis.lrange(keys.jobs, 0, -1)
    assert len(jobs) == len(set(jobs)) == 299
    assert set(context.redis.hvals(keys.lines)) == set(jobs)
    made = list(context.redis.scan_iter(f"{context.settings.key_prefix}:job:*"))
    assert len(made) == 299  # no line made a second job
    assert not context.redis.exists(context.store.keys.batch_slot(batch_id))
    retention = context.settings.batch_retention_seconds
    for key in (keys.info, keys.jobs, keys.lines, keys.invalid):
        assert 0 < context.redis.ttl(key) <= retention


def test_a_manifest_longer_than_a_chunk_is_enqueued_chunk_by_chunk(chunked):
    _, context = chunked
    context.celery.send_task(BATCH_TASK, args=("big", SLOT), queue=context.settings.queue)
    batch_id = "big-20261125T0230Z"
    _assert_each_line_made_one_job(context, batch_id)
    assert context.redis.hget(context.store.keys.batch(batch_id).info, "chunks") == "8"


def test_a_chunk_killed_mid_way_resumes_without_enqueuing_a_line_twice(chunked):
    worker, context = chunked
    batch_id = "big-20261125T0230Z"
    info = context.store.keys.batch(batch_id).info
    context.celery.send_task(BATCH_TASK, args=("big", SLOT), queue=context.settings.queue)
    deadline = time.monotonic() + 60
    while int(context.redis.hget(info, "line") or 0) < 50:  # into the second chunk
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.005)
    [pool] = _pool_children(worker.process.pid)
    os.kill(pool, signal.SIGSTOP)
    line = int(context.redis.hget(info, "line"))
    assert 50 <= line < 300 and line % 40  # stopped in the middle of a chunk
    os.kill(pool, signal.SIGKILL)  # the chunk's message comes back to a new pool process

    _assert_each_line_made_one_job(context, batch_id)
    chunks = int(context.redis.hget(info, "chunks"))
    assert chunks == 9  # eight chunks, and the killed one once more


class _CutOnce:
    """The admission client, but the first nudge is where the chunk's time limit strikes: just
    after a line's job was recorded and before the batch recorded the line."""

    def __init__(self, admission) -> None:
        self.admission = admission
        self.cut = False

    def __getattr__(self, name: str):
        return getattr(self.admission, name)

    def should_nudge(self) -> bool:
        if not self.cut:
            self.cut = True
            raise SoftTimeLimitExceeded()
        return self.admission.should_nudge()


def test_a_chunk_cut_off_by_its_time_limit_goes_on_without_enqueuing_a_line_twice(
    scheduled, producer, monkeypatch
):
    from wanedit.intake.batch import begin_scheduled
    from wanedit.intake.context import get_context
    from wanedit.workers.batches import run_batch_chunk

    batch_id = "nightly-20261129T0230Z"
    schedule = producer.settings.batch_schedule("nightly")
    assert begin_scheduled(batch_id, schedule.manifest, schedule.output, "cut", lease=900)
    ctx = get_context()
    monkeypatch.setattr(ctx, "admission", _CutOnce(ctx.admission))
    assert run_batch_chunk.run(batch_id, "cut") == "more"  # the rest goes on in the worker
    assert ctx.admission.cut

    info = wait_over(producer, batch_id)
    assert (info["total"], info["enqueued"], info["invalid"]) == ("2", "2", "0")
    keys = producer.store.keys.batch(batch_id)
    jobs = producer.redis.lrange(keys.jobs, 0, -1)
    assert len(set(jobs)) == 2
    [first] = [
        job for job in producer.store.get_many(jobs) if job.request["prompt"] == "Make it autumn"
    ]
    assert producer.redis.hget(keys.lines, "1") == first.id  # the job made before the cut
