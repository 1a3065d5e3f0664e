"""The documented protocol end to end, on a worker whose own zone is not UTC.

The provider writes Beijing time (UTC+8) and lists rows with epoch milliseconds, in no promised
order; another service shares the main account under a key of its own. The worker runs with
`TZ=America/Los_Angeles`. The list watch must see our tasks among the foreign ones, reconcile must
adopt the tasks whose create answers were lost (a 504 page, a dropped connection) with windows in
Beijing time, and the completion lag must be seconds, not hours.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_image
from tests.e2e.conftest import own_stack
from wanedit.images import encode_data_uri
from wanedit.producers import get_job, submit_edit, wait_for_job
from wanedit.provider_time import provider_moment
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker
from wanedit.store.counters import Counters
from wanedit.workers.client import ProviderClient, make_session

pytestmark = pytest.mark.integration
OTHER_SERVICE_KEY = "sk-other-service"
MODEL = "wan2.5-i2i-preview"


@pytest.fixture
def beijing_provider() -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(
            api_keys=(SANDBOX_KEY, OTHER_SERVICE_KEY),
            main_accounts=((SANDBOX_KEY, OTHER_SERVICE_KEY),),
            utc_offset_hours=8.0,
            list_order="shuffled",
            duration_min=2.0,
            duration_max=2.5,
            seed=13,
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()


def _other_service_creates(provider: SandboxServer, label: str, count: int = 1) -> None:
    """Tasks of another service on the same main account: they show in our task list."""
    client = ProviderClient(make_session(), provider.base_url, OTHER_SERVICE_KEY)
    image = encode_data_uri(make_image(512, 512, (9, 9, 9)), "image/png")
    for index in range(count):
        prompt = f"not ours, {label} {index}"
        client.create(MODEL, {"input": {"prompt": prompt, "images": [image]}})
        time.sleep(0.25)


def test_list_watch_and_reconcile_in_beijing_time_on_a_worker_in_los_angeles(
    stack_env, beijing_provider, tmp_path, image_file, run_id
):
    tag = f"zone-{run_id}"
    env, context = own_stack(
        stack_env,
        tag,
        beijing_provider.base_url,
        {
            "TZ": "America/Los_Angeles",
            "WANEDIT_POLL_MODE": "list",
            "WANEDIT_RECONCILE_DELAY": "1",
            "WANEDIT_RECONCILE_SKEW": "10",
            "WANEDIT_HTTP_READ_TIMEOUT": "2",
            # The watch looks every 0.5 s; each task's own fallback polls come every 20 s.
            "WANEDIT_POLL_FIRST_DELAY": "0.5",
            "WANEDIT_POLL_INTERVAL": "0.5",
            "WANEDIT_POLL_MAX_INTERVAL": "20",
        },
    )
    worker = Worker(env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    source = str(image_file("z.png"))
    try:
        plain = [
            submit_edit(prompt=f"zone plain {i}", images=[source], context=context)
            for i in range(2)
        ]
        _wait(lambda: all(get_job(j, context=context)["provider_task_id"] for j in plain))
        _other_service_creates(beijing_provider, "before")
        lost = [
            submit_edit(prompt=f"zone lost {trigger}", images=[source], context=context)
            for trigger in ("[sandbox:lost-504]", "[sandbox:lost-drop]")
        ]
        _other_service_creates(beijing_provider, "after")
        done = [wait_for_job(job_id, 90, context=context) for job_id in plain + lost]
        metrics = Counters(context.redis, key_prefix=context.settings.key_prefix)
        snapshot = metrics.snapshot(accounts=[], broker_queue=tag)
    finally:
        worker.stop()

    stats = beijing_provider.stats()
    assert [job["status"] for job in done] == ["succeeded"] * 4, [job.get("error") for job in done]
    assert stats["lost_answers"] == 2
    assert stats["repeated_prompts"] == {}, "a lost create answer made a second paid task"
    records = {job_id: context.redis.hgetall(context.store.keys.job(job_id)) for job_id in lost}
    assert [record.get("reconciled") for record in records.values()] == ["adopted"] * 2
    # The list watch noticed the ends, long before a 20 s fallback poll could have.
    assert stats["lists"] >= 1
    assert "list watch" not in (tmp_path / "w.log").read_text(), "a list call was refused"
    for job in done:
        stamps = {k: datetime.fromisoformat(v).timestamp() for k, v in job["timestamps"].items()}
        assert stamps["succeeded"] - stamps["submitted"] < 12, job["timestamps"]
    for job in done:
        _assert_lag_is_seconds(job)
    lag = snapshot.histograms["completion_lag_seconds"]
    assert lag.count == 4 and lag.mean is not None and 0 < lag.mean < 10
    duration = snapshot.histograms["task_duration_seconds"]
    assert duration.mean is not None and 1.9 <= duration.mean <= 2.6


def _assert_lag_is_seconds(job: dict[str, Any]) -> None:
    times = job["provider_times"]
    assert times["utc_offset"] == 8.0
    ended = provider_moment(times["end_time"], 8.0)
    finished = datetime.fromisoformat(job["timestamps"]["succeeded"]).timestamp()
    assert ended is not None and 0 < finished - ended < 10, (times, finished)


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
