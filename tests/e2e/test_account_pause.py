"""An account the provider refuses (a wrong key, an unpaid bill) pauses instead of failing its
jobs: the other account serves, the jobs wait, and `wanedit accounts resume` or the probe lets
them drain. Real parts: Redis, moto S3, the sandbox over HTTP, real Celery workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import Worker, patched_env

pytestmark = pytest.mark.integration
GOOD_KEY, FIXED_KEY, SOLO_KEY = "sk-good-account", "sk-second-account", "sk-solo-account"
FLIGHT_KEY = "sk-in-flight-account"
WRONG_KEY = "sk-not-a-key-the-provider-made"


@pytest.fixture(scope="module")
def provider() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        api_keys=(GOOD_KEY, FIXED_KEY, SOLO_KEY, FLIGHT_KEY),
        duration_min=0.3,
        duration_max=0.8,
        seed=11,
    )
    server = SandboxServer(config).start()
    try:
        yield server
    finally:
        server.stop()


def stack(
    stack_env: dict[str, str], tag: str, provider: SandboxServer, accounts: list[dict[str, Any]]
) -> dict[str, str]:
    """An environment with its own queue, key prefix and events, and these accounts."""
    return {
        **stack_env,
        "WANEDIT_QUEUE": tag,
        "WANEDIT_KEY_PREFIX": tag,
        "WANEDIT_EVENTS_STREAM": f"{tag}:events",
        "WANEDIT_ACCOUNTS": json.dumps(
            [{"base_url": provider.base_url, "concurrency": 2, **a} for a in accounts]
        ),
        "WANEDIT_SWEEP_INTERVAL": "1",
        "WANEDIT_ACCOUNT_PROBE_SECONDS": "3600",
    }


def context(env: dict[str, str]) -> Any:
    from wanedit.config.settings import load_settings
    from wanedit.intake.context import build_context

    with patched_env(env):
        return build_context(load_settings())


def wanedit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wanedit.producers.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def events(ctx: Any) -> list[dict[str, Any]]:
    from wanedit.store.events import read_events

    return [event for _, event in read_events(ctx.redis, ctx.settings.events_stream)]


def refused(ctx: Any, code: str) -> float:
    from wanedit.config.clients import read_snapshot
    from wanedit.store.counters import Counters

    counters = Counters(ctx.redis, key_prefix=ctx.settings.key_prefix)
    snapshot = read_snapshot(ctx.settings, counters, ctx.admission)
    return snapshot.counter("provider_errors_total", code=code)


def submit(ctx: Any, source: Path, count: int, label: str) -> list[str]:
    from wanedit.producers import submit_edit

    return [
        submit_edit(prompt=f"{label} {i}", images=[str(source)], context=ctx) for i in range(count)
    ]


def wait_all(ctx: Any, job_ids: list[str], timeout: float = 60) -> list[dict[str, Any]]:
    from wanedit.producers import wait_for_job

    return [wait_for_job(job_id, timeout, context=ctx) for job_id in job_ids]


def statuses(ctx: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    from wanedit.producers import get_job

    return [get_job(job_id, context=ctx) for job_id in job_ids]


def until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_wrong_key_pauses_its_account_and_resume_drains_its_jobs(
    stack_env, provider, image_file, run_id, tmp_path
):
    tag = f"wanedit-pause-{run_id}"
    accounts = [{"name": "bad", "api_key": WRONG_KEY}, {"name": "good", "api_key": GOOD_KEY}]
    env = stack(stack_env, tag, provider, accounts)
    ctx = context(env)
    source = image_file("pause.png", 600, 400)
    worker = Worker(env, log_path=tmp_path / "w1.log", cwd=Path.cwd()).start()
    try:
        # Both accounts are given jobs; the bad one's first create is refused and it pauses.
        first = wait_all(ctx, submit(ctx, source, 6, "first"))
        assert [job["status"] for job in first] == ["succeeded"] * 6  # none failed
        pause = ctx.admission.pauses.get("bad")
        assert pause is not None and pause.code == "InvalidApiKey"
        assert "refused by the host 127.0.0.1 endpoint" in pause.message
        assert "Beijing and Singapore do not mix" in pause.message
        paused = [e for e in events(ctx) if e["type"] == "account.paused"]
        assert [(e["account"], e["error"]["code"]) for e in paused] == [("bad", "InvalidApiKey")]
        assert WRONG_KEY not in json.dumps(events(ctx))

        quota = wanedit(env, "quota")
        assert quota.returncode == 0, quota.stderr
        assert "account bad: PAUSED since" in quota.stdout and "InvalidApiKey" in quota.stdout
        top = wanedit(env, "top", "--once")
        assert "PAUSED InvalidApiKey" in top.stdout
        stream = wanedit(env, "events")
        assert any(
            "account.paused  account bad  InvalidApiKey" in line
            for line in stream.stdout.splitlines()
        ), stream.stdout

        # The good account's bill goes unpaid too: now no account serves and the jobs wait.
        provider.sandbox.update_config({"arrears_keys": [GOOD_KEY]})
        held = submit(ctx, source, 3, "held")
        until(lambda: ctx.admission.pauses.get("good") is not None)
        refusals = refused(ctx, "Arrearage")
        time.sleep(3)  # no hot loop: nothing is sent to a paused account
        assert refused(ctx, "Arrearage") == refusals <= 2
        for job in statuses(ctx, held):
            assert job["status"] == "queued"
            assert job["waiting_for"].startswith("account_paused: InvalidApiKey: ")
            assert "account_paused: Arrearage: " in job["waiting_for"]
    finally:
        worker.stop()
        print(worker.tail(40))
    log = (tmp_path / "w1.log").read_text()
    # One ERROR line per pause, naming the account and the code, never the key.
    assert log.count("account bad: paused: InvalidApiKey") == 1
    assert log.count("account good: paused: Arrearage") == 1
    assert WRONG_KEY not in log and GOOD_KEY not in log

    # The key is fixed in the configuration and the workers restarted; the pause stays until
    # someone says the account is fixed.
    accounts[0]["api_key"] = FIXED_KEY
    env = stack(stack_env, tag, provider, accounts)
    worker = Worker(env, log_path=tmp_path / "w2.log", cwd=Path.cwd()).start()
    try:
        time.sleep(1)
        assert [job["status"] for job in statuses(ctx, held)] == ["queued"] * 3
        listed = wanedit(env, "accounts", "list")
        assert listed.returncode == 0, listed.stderr
        assert "paused since" in listed.stdout and FIXED_KEY not in listed.stdout

        resumed = wanedit(env, "accounts", "resume", "bad")
        assert resumed.returncode == 0, resumed.stderr
        assert "account bad: resumed" in resumed.stdout
        assert [job["status"] for job in wait_all(ctx, held)] == ["succeeded"] * 3
        assert all(job["account"] == "bad" for job in statuses(ctx, held))
        assert ctx.admission.pauses.get("good") is not None  # still unpaid
        lifted = [e for e in events(ctx) if e["type"] == "account.resumed"]
        assert [(e["account"], e["by"]) for e in lifted] == [("bad", "command")]

        unknown = wanedit(env, "accounts", "resume", "nosuch")
        assert unknown.returncode == 2
        assert "account 'nosuch' is not configured" in unknown.stderr
    finally:
        worker.stop()
        print(worker.tail(40))
        provider.sandbox.update_config({"arrears_keys": []})


def test_the_probe_resumes_an_account_once_the_provider_answers(
    stack_env, provider, image_file, run_id, tmp_path
):
    from wanedit.config.celery import SWEEP_TASK

    tag = f"wanedit-probe-{run_id}"
    env = {
        **stack(stack_env, tag, provider, [{"name": "solo", "api_key": SOLO_KEY}]),
        "WANEDIT_ACCOUNT_PROBE_SECONDS": "1",
    }
    ctx = context(env)
    provider.sandbox.update_config({"arrears_keys": [SOLO_KEY]})
    worker = Worker(env, log_path=tmp_path / "probe.log", cwd=Path.cwd()).start()
    try:
        jobs = submit(ctx, image_file("probe.png", 600, 400), 2, "probe")
        until(lambda: ctx.admission.pauses.get("solo") is not None)
        assert all(
            job["waiting_for"].startswith("account_paused: Arrearage: ")
            for job in statuses(ctx, jobs)
        )

        def sweep(check: Any) -> Any:
            def swept() -> bool:
                ctx.celery.send_task(SWEEP_TASK, queue=tag)
                time.sleep(0.5)
                return bool(check())

            return swept

        # Still unpaid: the probe's list call is refused and the pause stays.
        before = refused(ctx, "Arrearage")
        until(sweep(lambda: refused(ctx, "Arrearage") > before))
        assert ctx.admission.pauses.get("solo") is not None

        provider.sandbox.update_config({"arrears_keys": []})  # the bill is paid
        until(sweep(lambda: ctx.admission.pauses.get("solo") is None))
        assert [job["status"] for job in wait_all(ctx, jobs)] == ["succeeded"] * 2
        lifted = [e for e in events(ctx) if e["type"] == "account.resumed"]
        assert [(e["account"], e["by"]) for e in lifted] == [("solo", "probe")]
    finally:
        worker.stop()
        print(worker.tail(40))
        provider.sandbox.update_config({"arrears_keys": []})


def test_a_task_in_flight_when_its_account_pauses_finishes_normally(
    stack_env, provider, image_file, run_id, tmp_path
):
    tag = f"wanedit-flight-{run_id}"
    env = stack(stack_env, tag, provider, [{"name": "flight", "api_key": FLIGHT_KEY}])
    ctx = context(env)
    provider.sandbox.update_config({"duration_min": 4.0, "duration_max": 4.0})
    worker = Worker(env, log_path=tmp_path / "flight.log", cwd=Path.cwd()).start()
    try:
        [job_id] = submit(ctx, image_file("flight.png", 600, 400), 1, "flight")
        until(lambda: statuses(ctx, [job_id])[0]["status"] in ("submitted", "running"))
        # The bill goes unpaid while its task runs: its polls are refused, the account pauses.
        provider.sandbox.update_config({"arrears_keys": [FLIGHT_KEY]})
        until(lambda: ctx.admission.pauses.get("flight") is not None)
        assert statuses(ctx, [job_id])[0]["status"] in ("submitted", "running")
        provider.sandbox.update_config({"arrears_keys": []})
        # Polled on, it ends as its task did; the account stays paused until resumed.
        assert wait_all(ctx, [job_id])[0]["status"] == "succeeded"
        assert ctx.admission.pauses.get("flight") is not None
    finally:
        worker.stop()
        print(worker.tail(40))
        provider.sandbox.update_config(
            {"arrears_keys": [], "duration_min": 0.3, "duration_max": 0.8}
        )
