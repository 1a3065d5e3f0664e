"""Metrics and logs of a real worker: `/metrics` scraped after real jobs counts them exactly,
`wanedit top --once` shows the same numbers, and JSON log lines carry job ids and no secret."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_image
from tests.e2e.test_secrets import secret_values
from wanedit.config.settings import load_settings
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers import submit_edit, wait_for_job
from wanedit.sandbox.stack import Worker, free_port

pytestmark = pytest.mark.integration
TIMEOUT = 60


@dataclass
class Observed:
    """A worker of its own (metrics on, JSON logs) and the jobs it ran, by name."""

    worker: Worker
    env: dict[str, str]
    context: ProducerContext
    port: int
    jobs: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def observed(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, run_id: str
) -> Iterator[Observed]:
    # Its own prefix, queue and stream: the counters hold only this module's jobs.
    names = {
        "WANEDIT_KEY_PREFIX": f"obs-{run_id}",
        "WANEDIT_QUEUE": f"obs-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"obs-{run_id}:events",
    }
    port = free_port()
    env = {**stack_env, **names, "WANEDIT_METRICS_PORT": str(port), "WANEDIT_LOG_FORMAT": "json"}
    folder = tmp_path_factory.mktemp("obs")
    log = folder / "worker.log"
    worker = Worker(env, concurrency=2, log_path=log, cwd=Path(__file__).parents[2]).start()
    try:
        context = build_context(
            load_settings(
                key_prefix=names["WANEDIT_KEY_PREFIX"],
                queue=names["WANEDIT_QUEUE"],
                events_stream=names["WANEDIT_EVENTS_STREAM"],
            )
        )
        image = str(folder / "obs.png")
        Path(image).write_bytes(make_image(512, 512, (30, 120, 200)))
        submitted = {
            "single": submit_edit(prompt="obs: one", images=[image], context=context),
            "two": submit_edit(prompt="obs: two", images=[image], n=2, context=context),
            "third": submit_edit(prompt="obs: three", images=[image], context=context),
            "refused": submit_edit(
                prompt="[sandbox:moderation] obs", images=[image], context=context
            ),
            "failed": submit_edit(prompt="[sandbox:fail] obs", images=[image], context=context),
        }
        jobs = {
            name: wait_for_job(job_id, TIMEOUT, context=context)
            for name, job_id in submitted.items()
        }
        yield Observed(worker, env, context, port, jobs)
    finally:
        worker.stop()


def scrape(port: int) -> dict[str, float]:
    """Every sample on /metrics, as `name{label="value",...}` -> value."""
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_metrics_count_the_jobs_exactly(observed: Observed):
    jobs = observed.jobs
    assert [jobs[name]["status"] for name in ("single", "two", "third")] == ["succeeded"] * 3
    assert jobs["refused"]["error"]["code"] == "DataInspectionFailed"
    assert jobs["failed"]["error"]["code"] == "InternalError.Algo"
    assert jobs["failed"]["status"] == "failed"

    # Slots are given back just after the terminal step: wait for the gauges to settle.
    deadline = time.monotonic() + 10
    while (metrics := scrape(observed.port))['wanedit_inflight_tasks{account="default"}']:
        assert time.monotonic() < deadline, metrics
        time.sleep(0.1)

    succeeded = [jobs[name] for name in ("single", "two", "third")]
    reached = [*succeeded, jobs["failed"]]  # jobs with a provider task
    cost = sum(job["usage"]["cost"] for job in succeeded)
    currency = succeeded[0]["usage"]["currency"]
    expected = {
        "wanedit_redis_up{}": 1,
        'wanedit_jobs_total{status="succeeded"}': 3,
        'wanedit_jobs_total{status="failed"}': 2,
        'wanedit_jobs_total{status="canceled"}': 0,
        'wanedit_job_errors_total{code="DataInspectionFailed"}': 1,
        'wanedit_job_errors_total{code="InternalError.Algo"}': 1,
        # Refused at create (an error answer), and a task the provider ended FAILED.
        'wanedit_provider_errors_total{code="DataInspectionFailed"}': 1,
        'wanedit_provider_errors_total{code="InternalError.Algo"}': 1,
        "wanedit_images_stored_total{}": 4,
        'wanedit_images_billed_total{account="default"}': 4,
        'wanedit_inflight_tasks{account="default"}': 0,
        'wanedit_free_slots{account="default"}': 5,
        'wanedit_queue_depth{priority="interactive"}': 0,
        'wanedit_queue_depth{priority="batch"}': 0,
        "wanedit_polls_per_job_count{}": 4,
        "wanedit_polls_per_job_sum{}": sum(job["polls"] for job in reached),
        'wanedit_polls_per_job_bucket{le="+Inf"}': 4,
        "wanedit_task_duration_seconds_count{}": 4,
        'wanedit_task_duration_seconds_bucket{le="+Inf"}': 4,
        "wanedit_completion_lag_seconds_count{}": 4,
    }
    assert {name: metrics.get(name) for name in expected} == expected
    assert metrics[f'wanedit_cost_total{{account="default",currency="{currency}"}}'] == (
        pytest.approx(cost)
    )
    # The sandbox's tasks take 0.5 to 1.5 s: every one is in the 2 s bucket.
    durations = [job["provider_times"] for job in reached]
    assert all(times and times.get("end_time") for times in durations)
    assert metrics['wanedit_task_duration_seconds_bucket{le="2.0"}'] == 4
    assert 0 < metrics["wanedit_completion_lag_seconds_sum{}"] < 4 * 10

    top = subprocess.run(
        [sys.executable, "-m", "wanedit.producers.cli", "top", "--once"],
        env={**os.environ, **observed.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert top.returncode == 0, top.stderr
    screen = top.stdout.splitlines()
    assert "\x1b" not in top.stdout  # --once: no terminal control codes
    assert re.fullmatch(r"default +0/5 +5", screen[3])
    # A watch or admission message may be on its way through the queue at any moment.
    assert re.fullmatch(r"backlog +interactive 0  batch 0  \(broker queue \d+\)", screen[4])
    assert "jobs ended       succeeded 3  failed 2  canceled 0" in screen
    assert "job errors       DataInspectionFailed 1  InternalError.Algo 1" in screen
    assert "provider errors  DataInspectionFailed 1  InternalError.Algo 1" in screen
    assert "images           4 stored  4 billed" in screen
    # Today's cost, as `wanedit quota` shows it: the images counted today times the price.
    assert f"cost today       {cost:.2f} {currency}" in screen
    assert any(line.startswith("task duration    n=4  mean ") for line in screen)
    assert any(line.startswith("polls per job    n=4  mean ") for line in screen)


def test_top_once_without_redis_exits_3(stack_env):
    env = {**os.environ, **stack_env, "WANEDIT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    top = subprocess.run(
        [sys.executable, "-m", "wanedit.producers.cli", "top", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert top.returncode == 3
    assert top.stderr == "wanedit: Redis cannot be reached: ConnectionError\n"
    assert top.stdout == ""


def test_json_log_lines_name_their_job_and_hold_no_secret(observed: Observed):
    observed.worker.stop()  # flush everything it has to say
    text = observed.worker.log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line
    assert lines, "the worker wrote nothing"
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"].startswith("metrics: serving /metrics") for line in lines)

    ids = {job["id"]: name for name, job in observed.jobs.items()}
    for line in lines:
        named = [job_id for job_id in ids if job_id in line["message"]]
        if named:
            assert line.get("job_id") == named[0], line
    changes: dict[str, list[str]] = {job_id: [] for job_id in ids}
    for line in lines:
        if "to_status" in line:
            changes[line["job_id"]].append(line["to_status"])
    # One line per change of state, from the worker (the producer's `queued` is its own).
    for name in ("single", "two", "third"):
        assert changes[observed.jobs[name]["id"]] == ["submitted", "running", "succeeded"]
    assert changes[observed.jobs["refused"]["id"]] == ["failed"]
    assert changes[observed.jobs["failed"]["id"]][0] == "submitted"
    assert changes[observed.jobs["failed"]["id"]][-1] == "failed"
    # Celery's own lines about a task (received, succeeded) name its job too.
    about_jobs = [line for line in lines if any(job_id in str(line.get("data")) for job_id in ids)]
    assert len(about_jobs) >= 2 * len(ids)
    for line in about_jobs:
        assert line.get("job_id") in str(line["data"]["args"]), line

    for secret in secret_values(observed.env["WANEDIT_REDIS_URL"]):
        assert secret not in text
    assert not re.search(r"Signature=(?!\*\*\*)", text)
