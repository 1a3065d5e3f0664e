"""Chaos: many jobs against a faulty provider while workers are SIGKILLed and S3 goes away.

Faults: HTTP 500 on about 5% of creates and polls, 429 bursts, about 5% FAILED tasks, input
moderation refusals, partial failures, 25% of create answers lost after the task was made (a 504
gateway page, a dropped connection, a JSON 500, an answer too late); worker
processes killed with SIGKILL at random moments and restarted; the S3 endpoint the workers use
stopped for a while; every worker paused at once (a backed-up queue: polls come later than the
sweeper's threshold and slot leases run out); submit messages sent twice for jobs admitted or in
flight. Beat runs the sweeper. The default loss limit holds. It runs twice: workers looking for
the end of each task, and workers told by the provider's task-end events (10% of them lost, 5%
sent twice), looking only as the safety net. The figures are printed (run with
`-s` to see them).
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image

from tests.chaos.proxy import Outage
from tests.conftest import make_image
from wanedit.config.celery import SUBMIT_TASK
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Beat, Worker, patched_env
from wanedit.storage import S3Location
from wanedit.workers.client import ProviderClient, make_session

JOBS = 120
EVENTS_TOKEN = "chaos-events-token"
EVENT_LOSS = 0.1
EVENT_DUPLICATES = 0.05
BUCKET = "wanedit-chaos"
ROOT = Path(__file__).parents[2]
CHAOS_SECONDS = 45.0
SETTLE_TIMEOUT = 300.0
OUTAGE = (10.0, 8.0)  # the S3 endpoint is down from 10 s to 18 s
# Every worker paused from 22 s to 36 s: longer than the slot lease and many sweeps' grace.
CONGESTION = (22.0, 14.0)


@pytest.fixture(params=["looks", "events"])
def mode(request: pytest.FixtureRequest) -> str:
    """How workers learn that a task ended: looking (the default), or the provider's task-end
    events with 10% of them lost and 5% sent twice, looking only as the safety net."""
    return str(request.param)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        api_keys=(SANDBOX_KEY,),
        duration_min=0.5,
        duration_max=1.5,
        http_error_rate=0.05,
        fail_rate=0.05,
        moderation_rate=0.03,
        partial_rate=0.2,
        lost_answer_rate=0.25,
        lost_answer_modes=("504", "drop", "500", "late"),
        lost_answer_delay=2.0,
        list_order="shuffled",
        seed=11,
    )
    server = SandboxServer(config).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chaos_env(
    redis_url: str, s3_server: dict[str, str], sandbox: SandboxServer, run_id: str, mode: str
) -> Iterator[tuple[dict[str, str], Outage]]:
    endpoint = s3_server["AWS_ENDPOINT_URL_S3"]
    host, port = endpoint.removeprefix("http://").split(":")
    outage = Outage((host, int(port))).start()
    producer = {
        **s3_server,
        "WANEDIT_REDIS_URL": redis_url,
        "WANEDIT_KEY_PREFIX": f"wanedit-chaos-{run_id}-{mode}",
        "WANEDIT_QUEUE": f"wanedit-chaos-{run_id}-{mode}",
        "WANEDIT_EVENTS_STREAM": f"wanedit-chaos-{run_id}-{mode}:events",
        "WANEDIT_OUTPUT_URI": f"s3://{BUCKET}/out/",
        "DASHSCOPE_API_KEY": SANDBOX_KEY,
        "DASHSCOPE_HTTP_BASE_URL": sandbox.base_url,
        "WANEDIT_ALLOW_PRIVATE_URLS": "true",
        "WANEDIT_POLL_FIRST_DELAY": "0.4",
        "WANEDIT_POLL_INTERVAL": "0.4",
        "WANEDIT_POLL_MAX_INTERVAL": "1",
        "WANEDIT_POLL_MIN_INTERVAL": "0.1",
        "WANEDIT_POLL_DEADLINE": "600",
        "WANEDIT_RETRY_BASE": "0.2",
        "WANEDIT_RETRY_CAP": "1",
        "WANEDIT_RETRY_MAX": "30",
        "WANEDIT_HTTP_READ_TIMEOUT": "1",
        "WANEDIT_SLOT_LEASE_SECONDS": "10",
        "WANEDIT_RECONCILE_DELAY": "0.5",
        "WANEDIT_RECONCILE_SKEW": "5",
        # A create is sent again only after an empty look this long after the send: on a busy
        # two-core machine the sandbox has made tasks 5 s after a create was sent.
        "WANEDIT_RECONCILE_SETTLE": "20",
        "WANEDIT_SWEEP_INTERVAL": "1",
        "WANEDIT_SWEEP_GRACE": "3",
        "WANEDIT_FINISH_DEADLINE": "180",
        "WANEDIT_SOFT_SHUTDOWN_TIMEOUT": "0",
    }
    if mode == "events":
        producer.update(
            {
                "WANEDIT_PROVIDER_EVENTS": "true",
                "WANEDIT_PROVIDER_EVENTS_TOKEN": EVENTS_TOKEN,
                # Tasks take 0.5 to 1.5 s: a task whose event is lost is looked at after
                # 1.5 x the recent p95, then every second.
                "WANEDIT_PROVIDER_EVENTS_EXPECTED_DURATION": "2",
                "WANEDIT_PROVIDER_EVENTS_FALLBACK_INTERVAL": "1",
            }
        )
    with patched_env(producer):
        _reset()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="in/a.png", Body=make_image(640, 640, (200, 80, 40)))
        s3.put_object(Bucket=BUCKET, Key="in/b.png", Body=make_image(512, 768, (30, 90, 200)))
        try:
            # Workers reach S3 through the switchable endpoint; the producer and checks do not.
            yield {**producer, "AWS_ENDPOINT_URL_S3": outage.url}, outage
        finally:
            outage.stop()
            _reset()


def _reset() -> None:
    from wanedit.config.settings import get_settings
    from wanedit.intake.context import reset_context

    get_settings.cache_clear()
    reset_context()


class Chaos:
    """Kills and restarts workers, throttles in bursts and takes S3 away, on a timeline."""

    def __init__(
        self, workers: list[Worker], sandbox: SandboxServer, outage: Outage, ctx: Any
    ) -> None:
        self.workers = workers
        self.ctx = ctx
        self.job_ids: list[str] = []
        self.sandbox = sandbox
        self.outage = outage
        self.kills = 0
        self.bursts = 0
        self.outage_seconds = 0.0
        self.congestion_seconds = 0.0
        self.overlaps = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._rng = random.Random(5)
        self._workers_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._kill_loop,), daemon=True),
            threading.Thread(target=self._guard, args=(self._burst_loop,), daemon=True),
            threading.Thread(target=self._guard, args=(self._outage,), daemon=True),
            threading.Thread(target=self._guard, args=(self._congestion,), daemon=True),
            threading.Thread(target=self._guard, args=(self._overlap_loop,), daemon=True),
        ]

    def start(self) -> Chaos:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        self.outage.stop()
        self.outage.start()
        self.sandbox.sandbox.update_config({"throttle_rate": 0.0})

    def _guard(self, loop: Any) -> None:
        try:
            loop()
        except Exception as exc:  # reported by the test, not lost in a thread
            self.errors.append(f"{loop.__name__}: {exc!r}")

    def _kill_loop(self) -> None:
        while not self._stop.wait(self._rng.uniform(2.0, 5.0)):
            with self._workers_lock:  # not while the workers are paused
                worker = self._rng.choice(self.workers)
                worker.kill()
                self.kills += 1
                worker.start()

    def _congestion(self) -> None:
        start, length = CONGESTION
        if self._stop.wait(start):
            return
        with self._workers_lock:
            for worker in self.workers:
                worker.pause()
            began = time.monotonic()
            self._stop.wait(length)
            for worker in self.workers:
                worker.resume()
            self.congestion_seconds = time.monotonic() - began

    def _overlap_loop(self) -> None:
        """Send a second submit message for jobs that are admitted or in flight, as a message
        redelivered after its pool process died mid-create would be."""
        while not self._stop.wait(self._rng.uniform(0.5, 1.5)):
            eligible = [
                args for job in list(self.job_ids) if (args := overlap_submit(self.ctx, job))
            ]
            for args in self._rng.sample(eligible, min(2, len(eligible))):
                self.ctx.celery.send_task(SUBMIT_TASK, args=args)
                self.overlaps += 1

    def _burst_loop(self) -> None:
        while not self._stop.wait(self._rng.uniform(3.0, 6.0)):
            self.sandbox.sandbox.update_config({"throttle_rate": 1.0})
            time.sleep(0.4)
            self.sandbox.sandbox.update_config({"throttle_rate": 0.0})
            self.bursts += 1

    def _outage(self) -> None:
        start, length = OUTAGE
        if self._stop.wait(start):
            return
        self.outage.stop()
        began = time.monotonic()
        self._stop.wait(length)
        self.outage.start()
        self.outage_seconds = time.monotonic() - began


@contextmanager
def receiving(ctx: Any, sandbox: SandboxServer, mode: str) -> Iterator[None]:
    """In the events mode, `wanedit provider-events` in a thread, the sandbox posting to it."""
    if mode != "events":
        yield
        return
    from wanedit.producers.provider_events import http_server

    server = http_server(ctx, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sandbox.sandbox.update_config(
        {
            "event_url": f"http://127.0.0.1:{server.server_port}/events?token={EVENTS_TOKEN}",
            "event_loss_rate": EVENT_LOSS,
            "event_dup_rate": EVENT_DUPLICATES,
        }
    )
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_chaos(
    chaos_env: tuple[dict[str, str], Outage],
    sandbox: SandboxServer,
    mode: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from wanedit.intake.context import get_context

    with receiving(get_context(), sandbox, mode):
        _chaos(chaos_env, sandbox, mode, tmp_path_factory)


def _chaos(
    chaos_env: tuple[dict[str, str], Outage],
    sandbox: SandboxServer,
    mode: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from wanedit.intake.context import get_context
    from wanedit.producers import submit_edit

    worker_env, outage = chaos_env
    logs = tmp_path_factory.mktemp("chaos")
    workers = [
        Worker(worker_env, concurrency=2, log_path=logs / f"worker{i}.log", cwd=ROOT)
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    beat = Beat(worker_env, workdir=logs, log_path=logs / "beat.log").start()
    ctx = get_context()
    started = time.monotonic()
    chaos = Chaos(workers, sandbox, outage, ctx).start()
    try:
        job_ids = chaos.job_ids
        for index in range(JOBS):
            two = index % 4 == 0
            images = [f"s3://{BUCKET}/in/a.png"] + ([f"s3://{BUCKET}/in/b.png"] if two else [])
            job_ids.append(
                submit_edit(
                    prompt=f"chaos edit {index}: make the sky purple",
                    images=images,
                    n=2 if two else 1,
                    priority="batch" if index % 3 else "interactive",
                )
            )
            time.sleep(0.05)
        time.sleep(max(0.0, CHAOS_SECONDS - (time.monotonic() - started)))
    finally:
        chaos.stop()
    try:
        statuses = _settle(ctx, job_ids, SETTLE_TIMEOUT)
    finally:
        beat.stop()
        for worker in workers:
            worker.stop()
    elapsed = time.monotonic() - started

    stats = sandbox.stats()
    events = _terminal_events(ctx)
    bad_events = [job for job in job_ids if events[job] != 1]
    lost = [job for job, status in statuses.items() if status not in TERMINAL]
    jobs = {job: ctx.redis.hgetall(ctx.store.keys.job(job)) for job in job_ids}
    bad_png = _bad_outputs(jobs)
    reconciled = Counter(job["reconciled"] for job in jobs.values() if job.get("reconciled"))
    window, orphans = _reconcile_margins(jobs, sandbox)
    producer_delay = worker_env["WANEDIT_RECONCILE_DELAY"]
    errors = Counter(json.loads(job["error"])["code"] for job in jobs.values() if job.get("error"))
    duplicates = stats["repeated_prompts"]

    lines = [
        f"chaos ({mode}): {JOBS} jobs in {elapsed:.0f} s; workers SIGKILLed {chaos.kills} times; "
        f"429 bursts {chaos.bursts}; S3 endpoint down {chaos.outage_seconds:.1f} s; every worker "
        f"paused {chaos.congestion_seconds:.1f} s; second submit messages {chaos.overlaps}",
        f"  by status: {dict(Counter(statuses.values()))}",
        f"  failure codes: {dict(errors)}",
        f"  provider: creates {stats['creates']}, 500s {stats['http_errors']}, "
        f"429s {stats['throttled']}, lost create answers {stats['lost_answers']} "
        f"{stats['lost_answers_by_mode']}",
        f"  lost answers reconciled: {dict(reconciled)}",
        f"  remaining window: lost creates' tasks appeared at most {window[0]:.2f} s after the "
        f"send; adopted at least {window[1]:.2f} s after it (list call after "
        f"WANEDIT_RECONCILE_DELAY {producer_delay} s); sent again only after an empty look "
        f"WANEDIT_RECONCILE_SETTLE {worker_env['WANEDIT_RECONCILE_SETTLE']} s after the send",
        f"  task-end events: sent {stats['events_sent']}, lost {stats['events_lost']}, "
        f"sent twice {stats['events_duplicated']}; provider queries {stats['queries']}, "
        f"list calls {stats['lists']}",
        f"  jobs lost (not terminal): {len(lost)}",
        f"  duplicate provider tasks: {sum(c - 1 for c in duplicates.values())}",
        f"  provider tasks that no job recorded (made, billed, never delivered): {len(orphans)}",
        f"  jobs without exactly one terminal event: {len(bad_events)}",
        f"  succeeded outputs that are not a valid PNG in S3: {len(bad_png)}",
    ]
    print("\n" + "\n".join(lines))
    for job_id, job in jobs.items():
        # The sandbox's own random failures aside, say why each job failed.
        if job.get("error") and json.loads(job["error"])["code"] not in SANDBOX_FAILURES:
            print(f"  {job_id} failed: {job['error']} (last error: {job.get('last_error')})")
    assert not chaos.errors, chaos.errors
    assert chaos.kills >= 5 and chaos.outage_seconds > 0 and chaos.congestion_seconds > 0
    assert chaos.overlaps >= 10, chaos.overlaps
    assert lost == []
    assert duplicates == {}
    # At least 10% of the creates lost their answer, and every task they made belongs to its
    # job (adopted, or recorded when a late answer reached a worker paused meanwhile).
    assert stats["lost_answers"] >= 0.10 * stats["creates"], stats
    assert reconciled["adopted"] >= 0.5 * stats["lost_answers"], dict(reconciled)
    assert orphans == [], orphans
    assert bad_events == []
    assert bad_png == []
    # Kills here are not poison pills and every lost answer can be reconciled: no job may end
    # for want of progress.
    assert errors["WorkerLost"] == 0 and errors["CreateOutcomeUnknown"] == 0, dict(errors)
    assert statuses and Counter(statuses.values())["succeeded"] >= JOBS // 2
    if mode == "events":
        # Events were lost and sent twice, and no routine list watch ran.
        assert stats["events_lost"] >= 1 and stats["events_duplicated"] >= 1, stats


TERMINAL = {"succeeded", "failed", "canceled"}
SANDBOX_FAILURES = {"InternalError.Algo", "DataInspectionFailed"}  # fail_rate, moderation_rate


def overlap_submit(ctx: Any, job_id: str) -> list[Any] | None:
    """The arguments of a submit message for a job that is admitted or in flight, or None."""
    job = ctx.redis.hgetall(ctx.store.keys.job(job_id))
    if job.get("status") not in {"queued", "submitted", "running"} or not job.get("account"):
        return None
    # The message of the job's current admission, as a redelivery would carry it.
    token = job.get("admit_token")
    return [job_id, job["account"]] + ([int(token)] if token else [])


def _settle(ctx: Any, job_ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        statuses = {job: str(ctx.redis.hget(ctx.store.keys.job(job), "status")) for job in job_ids}
        if all(status in TERMINAL for status in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            return statuses
        time.sleep(1.0)


def _terminal_events(ctx: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _id, fields in ctx.redis.xrange(ctx.settings.events_stream, "-", "+"):
        counts[fields["job_id"]] += 1
    return counts


def _bad_outputs(jobs: dict[str, dict[str, str]]) -> list[str]:
    s3 = boto3.client("s3")
    bad = []
    for job_id, job in jobs.items():
        if job.get("status") != "succeeded":
            continue
        for output in json.loads(job["outputs"]):
            if "uri" not in output:
                continue
            where = S3Location.parse(output["uri"])
            body = s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
            try:
                with Image.open(io.BytesIO(body)) as image:
                    image.verify()
                    if image.format != "PNG":
                        raise ValueError(image.format)
            except Exception:
                bad.append(f"{job_id}: {output['uri']}")
    return bad


def _reconcile_margins(
    jobs: dict[str, dict[str, str]], sandbox: SandboxServer
) -> tuple[tuple[float, float], list[str]]:
    """For the jobs whose lost create was adopted: the most a task's provider submit time
    (`gmt_create`, from the task list) came after the create was sent, and the least time from
    the send to the adoption. The reconcile's list call comes at least WANEDIT_RECONCILE_DELAY
    after the answer was given up: a create that takes effect later than that is the window in
    which a task could still be made twice. Also the tasks the provider made that no job
    recorded, canceled ones (never billed) aside."""
    provider = ProviderClient(make_session(), sandbox.base_url, SANDBOX_KEY)
    now = time.time()
    listed = provider.list_window("wan2.5-i2i-preview", now - 3600, now)
    submitted = {task.task_id: task.submitted for task in listed}
    appeared, looked = [], []
    for job in jobs.values():
        if job.get("reconciled") != "adopted" or not job.get("create_sent_at"):
            continue
        sent = float(job["create_sent_at"])
        appeared.append((submitted[job["provider_task_id"]] or sent) - sent)
        looked.append(float(job["t_submitted"]) - sent)
    recorded = {job.get("provider_task_id") for job in jobs.values()}
    orphans = [
        f"{task.task_id} ({task.status})"
        for task in listed
        if task.task_id not in recorded and task.status != "CANCELED"
    ]
    return (max(appeared, default=0.0), min(looked, default=0.0)), orphans
