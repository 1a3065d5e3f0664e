"""The naive design under the same load: ``celery -A bench.naive worker`` on fresh servers."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import redis

from bench import naive
from bench.common import (
    BUCKET,
    ProcessTree,
    RunResult,
    Sample,
    Sampler,
    Workload,
    s3_client,
    task_spans,
    upload_inputs,
)
from bench.driver import drive
from bench.wanedit_run import ROOT, sandbox_config
from wanedit.provider_time import provider_moment
from wanedit.sandbox.server import SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, EmbeddedRedis, MotoS3, Worker

PRESIGN_TTL = 6 * 3600


class NaiveWorker(Worker):
    """``celery -A bench.naive worker``: the devstack worker with another app."""

    def start(self, timeout: float = 60.0) -> NaiveWorker:
        command = [
            sys.executable, "-m", "celery", "-A", "bench.naive", "worker",
            "--pool", "prefork", "--concurrency", str(self.concurrency), "--loglevel", "INFO",
            "--queues", naive.QUEUE,
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        assert self.log_path is not None
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self


def run_naive(workload: Workload, log_dir: Path, say: Callable[[str], None]) -> RunResult:
    with ExitStack() as stack:
        redis_server = EmbeddedRedis().start()
        stack.callback(redis_server.stop)
        s3_server = MotoS3().start()
        stack.callback(s3_server.stop)
        # One key: the naive design has no notion of several accounts.
        sandbox = SandboxServer(sandbox_config(workload, (SANDBOX_KEY,))).start()
        stack.callback(sandbox.stop)
        env = {
            **s3_server.env(),
            "NAIVE_REDIS_URL": redis_server.url,
            "NAIVE_BUCKET": BUCKET,
            "DASHSCOPE_API_KEY": SANDBOX_KEY,
            "DASHSCOPE_HTTP_BASE_URL": sandbox.base_url,
        }
        s3 = s3_client(env)
        upload_inputs(s3)
        # Inputs go once into S3; each edit passes presigned URLs, as wanedit's worker does.
        urls = {
            key: s3.generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=PRESIGN_TTL
            )
            for key in {workload.input_key(i) for i in range(3)}
        }
        worker = NaiveWorker(
            env,
            concurrency=workload.worker_concurrency,
            log_path=log_dir / "naive-worker.log",
            cwd=ROOT,
        )
        stack.callback(worker.stop)
        say(f"naive: starting the worker (log: {worker.log_path})")
        worker.start()
        assert worker.process is not None
        tree = ProcessTree(worker.process.pid)
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        stack.callback(client.close)
        app = naive.make_app(redis_server.url)

        def submit(kind: str, index: int) -> str:
            job_id = uuid.uuid4().hex
            client.hset(naive.job_key(job_id), mapping={"kind": kind, "t_queued": time.time()})
            client.incr(naive.WAITING)
            app.send_task(
                naive.EDIT_TASK,
                args=[job_id, workload.prompt(kind, index), [urls[workload.input_key(index)]]],
                queue=naive.QUEUE,
            )
            return job_id

        def probe() -> Sample:
            by_status = sandbox.stats()["tasks_by_status"]
            # Waiting = enqueued, not yet started: the queue's LLEN plus the prefetched messages.
            waiting = int(client.get(naive.WAITING) or 0)
            return Sample(
                time.time(), by_status["RUNNING"], by_status["PENDING"], waiting, tree.rss()
            )

        cpu_before = tree.cpu_seconds()
        sampler = Sampler(probe).start()
        try:
            run = drive(workload, submit, client, naive.EVENTS, say)
            cpu = tree.cpu_seconds() - cpu_before
        finally:
            samples = sampler.stop()
        stats = sandbox.stats()
        spans = task_spans(sandbox.sandbox, [SANDBOX_KEY])
        for edit in run.edits.values():
            record = client.hgetall(naive.job_key(edit.job_id))
            edit.provider_scheduled = provider_moment(record.get("scheduled_time"))
            edit.provider_end = provider_moment(record.get("end_time"))
            if edit.status is None:
                edit.status = "unfinished"
        notes = []
        if workload.accounts > 1:
            notes.append(
                f"The naive design uses one API key (one account); wanedit had "
                f"{workload.accounts}. Its utilization is against one account's capacity."
            )
        return RunResult(
            design="naive",
            accounts=1,
            edits=list(run.edits.values()),
            started_at=run.started_at,
            backlog_enqueued_at=run.backlog_enqueued_at,
            finished_at=run.finished_at,
            sandbox_stats=stats,
            account_names={SANDBOX_KEY: "a1"},
            cpu_seconds=cpu,
            peak_rss=max(sampler.peak_rss, tree.rss()),
            samples=samples,
            depth_source="`naive:waiting` = enqueued - started (queue LLEN + prefetched)",
            notes=notes,
            tasks=spans,
        )
