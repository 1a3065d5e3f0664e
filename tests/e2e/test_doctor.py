"""`wanedit doctor` as an operator runs it (a real process), against the sandbox over HTTP, a real
Redis, moto's S3 server, and where workers are checked a real worker and beat.

The sandbox is set to several provider zones; doctor must report each as measured from the
account's own answers, never assumed. A key the sandbox does not know answers 401
InvalidApiKey, as the provider does; the live mode's probe must find what the sandbox does with
a 6th and 7th task while 5 run (accepted and left PENDING in a FIFO queue, PROVIDER.md's "most
likely" reading, which the sandbox implements and documents in wanedit.sandbox.service).
"""

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
import redis

from tests.conftest import make_image
from tests.e2e.conftest import own_stack
from wanedit.images import encode_data_uri
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Beat, EmbeddedRedis, Receiver, Worker, free_port
from wanedit.store.keys import Keys
from wanedit.store.zones import ZoneStore
from wanedit.workers.client import ProviderClient, make_session

pytestmark = pytest.mark.integration
MODEL = "wan2.5-i2i-preview"
ROOT = Path(__file__).parents[2]


def doctor(
    env: dict[str, str], *args: str, cwd: Path, answer: str | None = None
) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "wanedit.doctor", *args],
        env={**os.environ, **env},
        cwd=cwd,
        input=answer,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout, done.stderr


def by_name(checks: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {check["check"]: check for check in checks}


def sandbox(offset: float, **extra: Any) -> SandboxServer:
    config = {"duration_min": 0.5, "duration_max": 1.0, "seed": 5, **extra}
    return SandboxServer(
        SandboxConfig(api_keys=(SANDBOX_KEY,), utc_offset_hours=offset, **config)
    ).start()


def one_task(server: SandboxServer) -> None:
    """A task of the account made by someone else: doctor measures the zone from it."""
    client = ProviderClient(make_session(), server.base_url, SANDBOX_KEY)
    image = encode_data_uri(make_image(512, 512, (9, 9, 9)), "image/png")
    client.create(MODEL, {"input": {"prompt": "not ours", "images": [image]}})


@pytest.mark.parametrize("offset", [8.0, 0.0, -5.5])
def test_doctor_reports_the_zone_each_provider_writes(stack_env, tmp_path, run_id, offset):
    server = sandbox(offset)
    try:
        one_task(server)
        tag = f"doctor-zone-{run_id}-{str(offset).replace('-', 'm')}"
        env, context = own_stack(stack_env, tag, server.base_url)
        code, out, err = doctor(env, "--json", "--timeout", "0.5", cwd=tmp_path)
        creates = server.stats()["creates"]
    finally:
        server.stop()
    checks = by_name(json.loads(out))
    assert code == 1, err  # no worker and no beat here
    for name in ("provider key [default]", "task list [default]", "provider time zone [default]"):
        assert checks[name]["status"] == "ok", checks[name]
    assert (
        f"UTC{offset:+g} (1 tasks' submit_time" in checks["provider time zone [default]"]["detail"]
    )
    assert checks["workers"]["status"] == "fail" and checks["beat"]["status"] == "fail"
    assert creates == 1, "doctor without --live created a task"
    # Measured and kept for the workers (none is configured here).
    measured = ZoneStore(context.redis, Keys(tag)).get("default")
    assert measured is not None and (measured.offset, measured.how) == (offset, "doctor")


def test_a_configured_zone_the_answers_contradict_fails_with_the_fix(stack_env, tmp_path, run_id):
    server = sandbox(0.0)
    try:
        one_task(server)
        env, _ = own_stack(stack_env, f"doctor-cfg-{run_id}", server.base_url)
        env["WANEDIT_PROVIDER_UTC_OFFSET"] = "8"
        code, out, _ = doctor(env, "--json", "--timeout", "0.5", cwd=tmp_path)
    finally:
        server.stop()
    zone = by_name(json.loads(out))["provider time zone [default]"]
    assert code == 1 and zone["status"] == "fail"
    assert "UTC+0" in zone["detail"] and "8 h off" in zone["detail"]
    assert "utc_offset (or WANEDIT_PROVIDER_UTC_OFFSET) to 0" in zone["fix"]


def test_a_refused_key_fails_naming_both_regions_and_never_shows_the_key(
    stack_env, sandbox, tmp_path, run_id
):
    secret = f"sk-not-known-{run_id}"
    env, _ = own_stack(stack_env, f"doctor-key-{run_id}", sandbox.base_url)
    env["DASHSCOPE_API_KEY"] = secret
    code, out, err = doctor(env, "--timeout", "0.5", cwd=tmp_path)
    assert code == 1
    assert "FAIL provider key [default]: InvalidApiKey" in out
    fix = next(line for line in out.splitlines()[1:] if "base_url" in line)
    assert "https://dashscope-intl.aliyuncs.com/api/v1" in fix
    assert "https://dashscope.aliyuncs.com/api/v1" in fix
    assert secret not in out + err
    # Nothing after the refusal is asked of that account.
    assert "task list [default]" not in out


def test_the_receiver_is_checked_at_its_url(stack_env, sandbox, tmp_path, run_id):
    tag = f"doctor-rx-{run_id}"
    env, _ = own_stack(
        stack_env,
        tag,
        sandbox.base_url,
        {"WANEDIT_PROVIDER_EVENTS": "true", "WANEDIT_PROVIDER_EVENTS_TOKEN": "t0ken-" + run_id},
    )
    receiver = Receiver(env, port=free_port(), log_path=tmp_path / "rx.log").start()
    try:
        env["WANEDIT_PROVIDER_EVENTS_URL"] = receiver.url
        _, up, _ = doctor(env, "--json", "--timeout", "0.5", cwd=tmp_path)
    finally:
        receiver.stop()
    _, down, _ = doctor(env, "--json", "--timeout", "0.5", cwd=tmp_path)
    del env["WANEDIT_PROVIDER_EVENTS_URL"]
    _, unset, _ = doctor(env, "--json", "--timeout", "0.5", cwd=tmp_path)
    assert by_name(json.loads(up))["events receiver"]["status"] == "ok"
    assert by_name(json.loads(down))["events receiver"]["status"] == "fail"
    assert by_name(json.loads(unset))["events receiver"]["status"] == "warn"


@pytest.fixture
def durable_redis() -> Iterator[str]:
    """A Redis set up as production needs it: AOF on, noeviction."""
    server = EmbeddedRedis().start()
    client = redis.Redis.from_url(server.url)
    client.config_set("appendonly", "yes")
    client.config_set("maxmemory-policy", "noeviction")
    client.close()
    try:
        yield server.url
    finally:
        server.stop()


def test_a_healthy_deployment_exits_0_and_the_live_mode_finds_the_providers_queue(
    stack_env, durable_redis, tmp_path, run_id
):
    server = sandbox(-5.5, duration_min=2.0, duration_max=3.0)
    tag = f"doctor-ok-{run_id}"
    env, _ = own_stack(
        stack_env,
        tag,
        server.base_url,
        {
            "WANEDIT_REDIS_URL": durable_redis,
            "WANEDIT_SWEEP_INTERVAL": "1",
            "WANEDIT_RESULT_URL_TTL": "300",
        },
    )
    worker = Worker(env, log_path=tmp_path / "w.log", cwd=ROOT).start()
    beat = Beat(env, workdir=tmp_path, log_path=tmp_path / "beat.log").start()
    try:
        _wait_for_sweeps(durable_redis, tag)
        code, out, err = doctor(env, "--timeout", "3", cwd=tmp_path)
        declined = doctor(env, "--live", cwd=tmp_path, answer="n\n")
        creates_after_no = server.stats()["create_requests"]
        report = tmp_path / "kept" / "report.json"
        live_code, live_out, live_err = doctor(
            env, "--live", "--yes", "--json", "--report", str(report), cwd=tmp_path
        )
        stats = server.stats()
    finally:
        beat.stop()
        worker.stop()
        server.stop()
    assert code == 0, out + err
    for name in ("redis persistence", "redis eviction policy", "workers", "beat", "result URLs"):
        assert f"ok   {name}:" in out, out
    # No task in the last 24 h yet: the zone is not measured, which is a warning only.
    assert "WARN provider time zone [default]: not measured" in out

    assert declined[0] == 9, declined
    assert "1.5412 CNY" in declined[1] and "nothing was created" in declined[1]
    assert creates_after_no == 0, "a declined live mode sent a create"

    assert live_code == 0, live_out + live_err
    assert stats["creates"] == 7, "the probe (C+2 tasks) is the account's edit too"
    assert stats["max_running"] == 5
    kept = json.loads(report.read_text())
    probe = kept["live"]["accounts"]["default"]["probe"]
    assert probe["extra_tasks"] == "accepted and left PENDING until a slot freed"
    assert (probe["accepted"], probe["refused"], probe["max_running"]) == (7, [], 5)
    assert probe["queued_start_order"] == [5, 6] and probe["fifo"] is True
    assert probe["start_order"] == list(range(7))
    # The sandbox starts a queued task the moment a slot frees.
    assert [wait["wait"] for wait in probe["slot_waits"]] == [0.0, 0.0]
    edit = kept["live"]["accounts"]["default"]["edit"]
    assert (edit["status"], edit["zone_measured"], edit["download"]["format"]) == (
        "SUCCEEDED",
        -5.5,
        "PNG",
    )
    assert 0 <= edit["submit_seconds_after_send"] < 2
    assert kept["live"]["cost_at_most"] == {"CNY": 1.541239}
    checks = by_name(json.loads(live_out))
    assert checks["concurrency probe [default]"]["status"] == "ok"
    assert checks["live edit [default]"]["status"] == "ok"
    assert SANDBOX_KEY not in report.read_text() + live_out + live_err


def _wait_for_sweeps(url: str, tag: str, timeout: float = 30.0) -> None:
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while not client.llen(Keys(tag).sweeps):
        assert time.monotonic() < deadline, "beat's sweeps never ran"
        time.sleep(0.2)
    client.close()
