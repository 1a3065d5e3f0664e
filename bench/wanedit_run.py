"""The product under load: a real ``celery -A wanedit.workers worker`` fed through ``producers``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import (
    BUCKET,
    ProcessTree,
    RunResult,
    Sample,
    Sampler,
    Workload,
    event_sends,
    s3_client,
    task_spans,
    upload_inputs,
)
from bench.designs import DESIGNS, Design
from bench.driver import drive
from bench.receiver import EventsReceiver
from wanedit.provider_time import BEIJING_UTC_OFFSET, provider_moment
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import LOCAL_ENV, SANDBOX_KEY, EmbeddedRedis, MotoS3, Worker, patched_env

ROOT = Path(__file__).resolve().parents[1]
BACKLOG_LANES = ("interactive", "batch")


def account_keys(accounts: int) -> dict[str, str]:
    """Sandbox key -> account name; one account keeps the usual sandbox key."""
    if accounts == 1:
        return {SANDBOX_KEY: "a1"}
    return {f"sk-a{i}": f"a{i}" for i in range(1, accounts + 1)}


def sandbox_config(workload: Workload, keys: tuple[str, ...], **events: Any) -> SandboxConfig:
    """The sandbox with the provider's limits; ``events``: its ``event_*`` fields, if any."""
    try:
        return SandboxConfig(
            api_keys=keys,
            concurrency=workload.concurrency,
            submit_rate=workload.submit_rate,
            query_rate=workload.query_rate,
            duration_min=workload.duration_min,
            duration_max=workload.duration_max,
            seed=workload.seed,
            **events,
        )
    except TypeError as exc:
        if not events:
            raise
        raise RuntimeError(
            f"this sandbox cannot post task-finished events ({exc}): the events designs "
            "need SandboxConfig's event_url, event_delay and event_loss_rate"
        ) from None


def _reset_producer() -> None:
    from wanedit.config.settings import get_settings
    from wanedit.intake.context import reset_context

    get_settings.cache_clear()
    reset_context()


class BacklogDepth:
    """Edits waiting in our backlog: the backlog sets when the product has them, else the jobs
    still ``queued`` (recorded, not yet created at the provider)."""

    def __init__(self, client: Any, prefix: str, job_key: Callable[[str], str]) -> None:
        self.client = client
        self.keys = [f"{prefix}:backlog:{lane}" for lane in BACKLOG_LANES]
        self.job_key = job_key
        self.job_ids: list[str] = []
        self.uses_backlog = False

    @property
    def source(self) -> str:
        if self.uses_backlog:
            return "size of " + " + ".join(f"`{key}`" for key in self.keys)
        return "jobs in status `queued` (no backlog keys seen)"

    def __call__(self) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key in self.keys:
            pipe.type(key)
        types = [str(t) for t in pipe.execute()]
        if self.uses_backlog or any(t != "none" for t in types):
            self.uses_backlog = True
            size = {"zset": "zcard", "list": "llen", "set": "scard", "hash": "hlen"}
            pipe = self.client.pipeline(transaction=False)
            for key, kind in zip(self.keys, types, strict=True):
                if kind in size:
                    getattr(pipe, size[kind])(key)
            return sum(int(n) for n in pipe.execute())
        ids = list(self.job_ids)
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.job_key(job_id), "status")
        return sum(1 for status in pipe.execute() if status == "queued")


def run_wanedit(
    workload: Workload,
    log_dir: Path,
    say: Callable[[str], None],
    design: Design = DESIGNS["wanedit"],
    event_delay: float = 0.0,
) -> RunResult:
    """One wanedit design; with ``design.events``, the sandbox posts each task's end to a
    ``wanedit provider-events`` receiver after ``event_delay`` seconds."""
    keys = account_keys(workload.accounts)
    with ExitStack() as stack:
        redis_server = EmbeddedRedis().start()
        stack.callback(redis_server.stop)
        s3_server = MotoS3().start()
        stack.callback(s3_server.stop)
        receiver = None
        events: dict[str, Any] = {}
        if design.events:
            log_path = _fresh(log_dir / f"{design.name}-receiver.log")
            receiver = EventsReceiver(log_path=log_path)
            events = {
                "event_url": receiver.url,
                "event_delay": event_delay,
                "event_loss_rate": design.event_loss_rate,
            }
        sandbox = SandboxServer(sandbox_config(workload, tuple(keys), **events)).start()
        stack.callback(sandbox.stop)
        first_key = next(iter(keys))
        env = {
            **s3_server.env(),
            **LOCAL_ENV,
            "WANEDIT_REDIS_URL": redis_server.url,
            "WANEDIT_OUTPUT_URI": f"s3://{BUCKET}/out/",
            "DASHSCOPE_API_KEY": first_key,
            "DASHSCOPE_HTTP_BASE_URL": sandbox.base_url,
        }
        env.update(scaled_timing(workload))
        if receiver is not None:
            env["WANEDIT_PROVIDER_EVENTS"] = "true"
            env.update(scaled_event_timing(workload))
            env.update(receiver.env())
        if workload.accounts > 1:
            env["WANEDIT_ACCOUNTS"] = json.dumps(
                [
                    {"name": name, "api_key": key, "base_url": sandbox.base_url}
                    for key, name in keys.items()
                ]
            )
        stack.enter_context(patched_env(env))
        stack.callback(_reset_producer)
        _reset_producer()
        upload_inputs(s3_client(env))

        if receiver is not None:
            stack.callback(receiver.stop)
            say(f"{design.name}: starting the events receiver (log: {receiver.log_path})")
            receiver.start(env)
        worker = Worker(
            env,
            concurrency=workload.worker_concurrency,
            log_path=_fresh(log_dir / f"{design.name}-worker.log"),
            cwd=ROOT,
        )
        stack.callback(worker.stop)
        say(f"{design.name}: starting the worker (log: {worker.log_path})")
        worker.start()
        assert worker.process is not None
        tree = ProcessTree(worker.process.pid)
        run = _measure(workload, sandbox, tree, keys, say)
        run.design = design.name
        if receiver is not None:
            run.event_delay = event_delay
            run.event_sends = event_sends(sandbox.sandbox)
            run.notes.append(_events_note(design, event_delay, workload))
        return run


def _fresh(path: Path) -> Path:
    """A log of this run only (the worker appends to its log)."""
    path.unlink(missing_ok=True)
    return path


def _events_note(design: Design, delay: float, workload: Workload) -> str:
    loss = f", and drops {design.event_loss_rate:.0%} of them" if design.event_loss_rate else ""
    return (
        f"The sandbox posts each task's end to `wanedit provider-events` {delay:g} s after it "
        f"ends{loss}. The delay is the sandbox's assumption: the provider documents that the "
        "event arrives as soon as the task ends, with no figure. Worker settings: "
        + ", ".join(f"`{k}={v}`" for k, v in sorted(scaled_event_timing(workload).items()))
        + "."
    )


def _measure(
    workload: Workload,
    sandbox: SandboxServer,
    tree: ProcessTree,
    keys: dict[str, str],
    say: Callable[[str], None],
) -> RunResult:
    from wanedit.intake.context import get_context
    from wanedit.producers import EditRequest, get_job, submit_edit

    ctx = get_context()
    has_priority = "priority" in EditRequest.model_fields
    depth = BacklogDepth(ctx.redis, ctx.settings.key_prefix, ctx.store.keys.job)

    def probe() -> Sample:
        by_status = sandbox.stats()["tasks_by_status"]
        return Sample(time.time(), by_status["RUNNING"], by_status["PENDING"], depth(), tree.rss())

    def submit(kind: str, index: int) -> str:
        fields: dict[str, Any] = {
            "prompt": workload.prompt(kind, index),
            "images": [f"s3://{BUCKET}/{workload.input_key(index)}"],
            "n": 1,
            "metadata": {"bench": kind, "index": index},
        }
        if has_priority:
            fields["priority"] = kind
        return submit_edit(**fields)

    cpu_before = tree.cpu_seconds()
    sampler = Sampler(probe).start()
    try:
        run = drive(
            workload,
            submit,
            ctx.redis,
            ctx.settings.events_stream,
            say,
            on_submit=depth.job_ids.append,
        )
        cpu = tree.cpu_seconds() - cpu_before
    finally:
        samples = sampler.stop()
    stats = sandbox.stats()
    spans = task_spans(sandbox.sandbox, list(keys))
    for edit in run.edits.values():
        job = get_job(edit.job_id)
        times = job.get("provider_times") or {}
        zone = times.get("utc_offset", BEIJING_UTC_OFFSET)
        edit.provider_scheduled = provider_moment(times.get("scheduled_time"), zone)
        edit.provider_end = provider_moment(times.get("end_time"), zone)
        edit.polls = int(job.get("polls") or 0)
        edit.task_id = job.get("provider_task_id")
        if edit.status is None:
            edit.status = f"unfinished ({job['status']})"

    notes = []
    if not has_priority:
        notes.append(
            "`producers.EditRequest` has no `priority` field yet: interactive edits were "
            "enqueued exactly like batch edits."
        )
    scaled = scaled_timing(workload)
    notes.append(
        "Durations are scaled down from the real 30 to 120 s, so wanedit's time settings are "
        "scaled by the same factor (unless set in the environment): "
        + ", ".join(f"`{name}={value}`" for name, value in sorted(scaled.items()))
        + "."
    )
    overrides = sorted(
        n for n in os.environ if n.startswith("WANEDIT_") and n not in _OWN and n not in scaled
    )
    if overrides:
        listed = ", ".join(f"`{n}={os.environ[n]}`" for n in overrides)
        notes.append(f"Product settings taken from the environment: {listed}.")
    return RunResult(
        design="wanedit",
        accounts=workload.accounts,
        edits=list(run.edits.values()),
        started_at=run.started_at,
        backlog_enqueued_at=run.backlog_enqueued_at,
        finished_at=run.finished_at,
        sandbox_stats=stats,
        account_names=keys,
        cpu_seconds=cpu,
        peak_rss=max(sampler.peak_rss, tree.rss()),
        samples=samples,
        depth_source=depth.source,
        notes=notes,
        tasks=spans,
    )


# The product's defaults for the real provider's 30 to 120 s tasks, and the floors its settings
# allow; the benchmark scales them like the task durations.
REAL_MEAN_TASK = 75.0
_TIMING = {
    "WANEDIT_POLL_FIRST_DELAY": (10.0, 0.0),
    "WANEDIT_POLL_INTERVAL": (5.0, 0.0),
    "WANEDIT_POLL_MAX_INTERVAL": (15.0, 0.0),
    "WANEDIT_POLL_MIN_INTERVAL": (1.0, 0.0),
    "WANEDIT_RETRY_BASE": (2.0, 0.0),
    "WANEDIT_RETRY_CAP": (60.0, 0.0),
    "WANEDIT_SLOT_LEASE_SECONDS": (300.0, 10.0),
}


def scaled_timing(workload: Workload) -> dict[str, str]:
    """The time settings scaled by (mean scaled task) / (mean real task); the environment wins."""
    factor = (workload.duration_min + workload.duration_max) / 2 / REAL_MEAN_TASK
    return {
        name: os.environ.get(name, f"{max(default * factor, floor):.3g}")
        for name, (default, floor) in _TIMING.items()
    }


# The events mode's time settings (real defaults, floors), scaled the same way.
_EVENT_TIMING = {
    "WANEDIT_PROVIDER_EVENTS_EXPECTED_DURATION": (60.0, 0.0),
    "WANEDIT_PROVIDER_EVENTS_FALLBACK_INTERVAL": (30.0, 0.0),
    "WANEDIT_PROVIDER_EVENTS_WATCH_SECONDS": (600.0, 0.0),
}


def scaled_event_timing(workload: Workload) -> dict[str, str]:
    """The events mode's time settings, scaled like ``scaled_timing``; the environment wins."""
    factor = (workload.duration_min + workload.duration_max) / 2 / REAL_MEAN_TASK
    return {
        name: os.environ.get(name, f"{max(default * factor, floor):.3g}")
        for name, (default, floor) in _EVENT_TIMING.items()
    }


# Settings this harness sets itself; any other WANEDIT_* in the environment is reported.
_OWN = frozenset(
    {
        "WANEDIT_REDIS_URL",
        "WANEDIT_OUTPUT_URI",
        "WANEDIT_ACCOUNTS",
        "WANEDIT_S3_ADDRESSING_STYLE",
        "WANEDIT_PROVIDER_EVENTS",
        "WANEDIT_PROVIDER_EVENTS_TOKEN",
        *_EVENT_TIMING,
        *LOCAL_ENV,
    }
)
