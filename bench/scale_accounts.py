"""Figures 3 and 4: one worker machine (one worker, 2 processes) driving 1 and then N provider
accounts on the sandbox at the same task durations, and the naive design's CPU per edit in the
same run (`make bench`'s naive design and measurement, unchanged).

Each wanedit run has its whole backlog enqueued (as a batch's lines are, a chunk at a time)
before the worker starts, so the benchmark process's own enqueueing does not compete with the
worker for the machine's 2 cores: the run is the worker draining a backlog, from the moment it
is ready to the last completion event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import fmean
from typing import Any

import psutil

from bench.common import BUCKET, ProcessTree, Workload, s3_client, upload_inputs
from bench.figures import compute
from bench.scale_servers import reset_producer
from bench.wanedit_run import ROOT, account_keys, sandbox_config, scaled_timing
from wanedit.provider_time import BEIJING_UTC_OFFSET, provider_moment
from wanedit.sandbox.server import SandboxServer
from wanedit.sandbox.stack import LOCAL_ENV, EmbeddedRedis, MotoS3, Worker, patched_env
from wanedit.store.events import read_events

PROGRESS_EVERY = 15.0


@dataclass(frozen=True)
class DrainFigures:
    """One run: `edits` edits drained by one worker from an enqueued backlog."""

    label: str
    accounts: int
    edits: int
    succeeded: int
    seconds: float  # worker ready to the last completion event
    mean_task: float | None  # the provider's own scheduled-to-end times
    cpu_seconds: float  # the worker's process tree
    main_cpu_seconds: float  # of which the worker's main process (consumer, timers)
    queries: int  # task queries and list calls, sandbox counts
    max_running: int  # tasks running at once, all accounts, sandbox's peak per account summed

    @property
    def throughput(self) -> float:
        return self.succeeded / self.seconds if self.seconds else 0.0

    @property
    def capacity(self) -> float | None:
        return 5 * self.accounts / self.mean_task if self.mean_task else None

    @property
    def utilization(self) -> float | None:
        capacity = self.capacity
        return self.throughput / capacity if capacity else None

    @property
    def cpu_per_edit(self) -> float:
        return self.cpu_seconds / max(self.edits, 1)


def workload_for(
    accounts: int, *, edits_per_account: int, duration: tuple[float, float]
) -> Workload:
    """The same backlog per account, so start and end weigh the same at every account count."""
    return Workload(
        edits=edits_per_account * accounts,
        interactive=0,
        accounts=accounts,
        duration_min=duration[0],
        duration_max=duration[1],
    )


def drain(workload: Workload, log_dir: Path, say: Callable[[str], None]) -> DrainFigures:
    """Enqueue the backlog, start one worker (2 processes), wait for every completion event."""
    keys = account_keys(workload.accounts)
    with ExitStack() as stack:
        redis_server = EmbeddedRedis().start()
        stack.callback(redis_server.stop)
        s3_server = MotoS3().start()
        stack.callback(s3_server.stop)
        sandbox = SandboxServer(sandbox_config(workload, tuple(keys))).start()
        stack.callback(sandbox.stop)
        env = {
            **s3_server.env(),
            **LOCAL_ENV,
            "WANEDIT_REDIS_URL": redis_server.url,
            "WANEDIT_OUTPUT_URI": f"s3://{BUCKET}/out/",
            "DASHSCOPE_API_KEY": next(iter(keys)),
            "DASHSCOPE_HTTP_BASE_URL": sandbox.base_url,
            **scaled_timing(workload),
        }
        if workload.accounts > 1:
            env["WANEDIT_ACCOUNTS"] = json.dumps(
                [{"name": n, "api_key": k, "base_url": sandbox.base_url} for k, n in keys.items()]
            )
        stack.enter_context(patched_env(env))
        stack.callback(reset_producer)
        reset_producer()
        upload_inputs(s3_client(env))
        job_ids = _enqueue(workload)
        worker = Worker(
            env,
            concurrency=workload.worker_concurrency,
            log_path=log_dir / f"scale-worker-{workload.accounts}.log",
            cwd=ROOT,
        )
        stack.callback(worker.stop)
        worker.start()
        assert worker.process is not None
        tree = ProcessTree(worker.process.pid)
        main = psutil.Process(worker.process.pid)
        cpu_before, main_before = tree.cpu_seconds(), _own_cpu(main)
        started = time.time()
        finished, statuses = _wait(env, set(job_ids), started, workload, say)
        cpu, main_cpu = tree.cpu_seconds() - cpu_before, _own_cpu(main) - main_before
        stats = sandbox.stats()
        return DrainFigures(
            label=f"wanedit, {workload.accounts} account{'s' if workload.accounts > 1 else ''}",
            accounts=workload.accounts,
            edits=len(job_ids),
            succeeded=sum(1 for s in statuses.values() if s == "succeeded"),
            seconds=finished - started,
            mean_task=_mean_task(job_ids),
            cpu_seconds=cpu,
            main_cpu_seconds=main_cpu,
            queries=int(stats.get("queries", 0)) + int(stats.get("lists", 0)),
            max_running=sum(int(v) for v in (stats.get("max_running_by_account") or {}).values()),
        )


def _own_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _enqueue(workload: Workload) -> list[str]:
    from wanedit.intake import submit_many

    requests = [
        {
            "prompt": workload.prompt("batch", index),
            "images": [f"s3://{BUCKET}/{workload.input_key(index)}"],
            "priority": "batch",
            "metadata": {"bench": "scale", "index": index},
        }
        for index in range(workload.edits)
    ]
    ids: list[str] = []
    for first in range(0, len(requests), 200):
        for outcome in submit_many(requests[first : first + 200]):
            if not isinstance(outcome, str):
                raise RuntimeError(f"the benchmark's own edit was refused: {outcome}")
            ids.append(outcome)
    return ids


def _wait(
    env: dict[str, str],
    pending: set[str],
    started: float,
    workload: Workload,
    say: Callable[[str], None],
) -> tuple[float, dict[str, str]]:
    from wanedit.intake.context import get_context

    ctx = get_context()
    statuses: dict[str, str] = {}
    last_id, finished = "0-0", started
    deadline = started + workload.timeout()
    next_progress = time.monotonic() + PROGRESS_EVERY
    while pending and time.time() < deadline:
        for entry_id, event in read_events(ctx.redis, ctx.settings.events_stream, start=last_id):
            last_id = entry_id
            job_id = str(event.get("job_id"))
            if job_id in pending:
                pending.discard(job_id)
                statuses[job_id] = str(event.get("status"))
                finished = max(finished, int(entry_id.split("-")[0]) / 1000)
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_EVERY
            say(f"  {len(statuses)} edits ended after {time.time() - started:.0f} s")
        time.sleep(0.1)
    if pending:
        say(f"  timed out: {len(pending)} edits without an event")
        finished = time.time()
    return finished, statuses


def _mean_task(job_ids: list[str]) -> float | None:
    from wanedit.intake.context import get_context

    ctx = get_context()
    durations = []
    for job in ctx.store.get_many(job_ids):
        times: dict[str, Any] = job.provider_times or {}
        zone = times.get("utc_offset", BEIJING_UTC_OFFSET)
        start = provider_moment(times.get("scheduled_time"), zone)
        end = provider_moment(times.get("end_time"), zone)
        if start is not None and end is not None:
            durations.append(end - start)
    return fmean(durations) if durations else None


@dataclass(frozen=True)
class NaiveFigures:
    edits: int
    cpu_per_edit: float
    mean_task: float | None


def naive_cpu(workload: Workload, log_dir: Path, say: Callable[[str], None]) -> NaiveFigures:
    """`make bench`'s naive design on the 1-account workload (`workload.edits` edits)."""
    from bench.naive_run import run_naive

    run = run_naive(replace(workload, interactive=0), log_dir, say)
    figures = compute(run, workload)
    return NaiveFigures(figures.edits, figures.cpu_per_edit, figures.mean_task)


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    low, high = (float(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "8:24").split(":"))
    log_dir = Path(__file__).resolve().parent / "logs"
    log_dir.mkdir(exist_ok=True)
    for n in (1, count):
        f = drain(workload_for(n, edits_per_account=per, duration=(low, high)), log_dir, print)
        print(f, f"{f.throughput:.3f}/s util {f.utilization} cpu/edit {f.cpu_per_edit:.4f}")
