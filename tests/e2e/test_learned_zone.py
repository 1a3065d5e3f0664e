"""The provider's zone is learned, not assumed: a worker with no zone configured, against a
provider that writes UTC-5:30, reads every time right.

The first job's create answer is lost, so the very first thing the worker must do is find its
task in the task list, whose window is written in the provider's zone: a window written in the
assumed Beijing time would be 13.5 h off, find nothing, and the edit would be created twice.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import own_stack
from wanedit.producers import submit_edit, wait_for_job
from wanedit.provider_time import provider_moment
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker
from wanedit.store.counters import Counters
from wanedit.store.zones import ZoneStore

pytestmark = pytest.mark.integration
ZONE = -5.5


def test_a_worker_learns_the_providers_zone_and_reads_its_times_with_it(
    stack_env, tmp_path, image_file, run_id
):
    provider = SandboxServer(
        SandboxConfig(
            api_keys=(SANDBOX_KEY,),
            utc_offset_hours=ZONE,
            duration_min=1.0,
            duration_max=1.5,
            seed=11,
        )
    ).start()
    tag = f"zone-learned-{run_id}"
    env, context = own_stack(
        stack_env,
        tag,
        provider.base_url,
        {
            "WANEDIT_RECONCILE_DELAY": "1",
            "WANEDIT_RECONCILE_SKEW": "10",
            "WANEDIT_RECONCILE_SETTLE": "5",  # a wrong window would create again within seconds
            "WANEDIT_HTTP_READ_TIMEOUT": "2",
        },
    )
    assert (
        "WANEDIT_PROVIDER_UTC_OFFSET" not in env and context.settings.accounts[0].utc_offset is None
    )
    worker = Worker(env, log_path=tmp_path / "w.log", cwd=Path.cwd()).start()
    source = str(image_file("z.png"))
    zones = ZoneStore(context.redis, context.store.keys)
    try:
        lost = submit_edit(prompt="learn [sandbox:lost-504]", images=[source], context=context)
        first = wait_for_job(lost, 60, context=context)
        after_lost = zones.get("default")
        plain = submit_edit(prompt="learn plain", images=[source], context=context)
        second = wait_for_job(plain, 60, context=context)
        snapshot = Counters(context.redis, key_prefix=tag).snapshot(accounts=[], broker_queue=tag)
    finally:
        worker.stop()
        provider.stop()
    stats = provider.stats()
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert stats["lost_answers"] == 1
    assert stats["repeated_prompts"] == {}, "the lost create was made twice"
    record: Any = context.redis.hgetall(context.store.keys.job(lost))
    assert record["reconciled"] == "adopted"
    # Learned from the task list before the lost create was looked for.
    assert after_lost is not None and after_lost.offset == ZONE
    assert after_lost.how.startswith(("list ", "create"))
    measured = zones.get("default")
    assert measured is not None and measured.offset == ZONE
    for job in (first, second):
        assert job["provider_times"]["utc_offset"] == ZONE
        _assert_lag_is_seconds(job)
    lag = snapshot.histograms["completion_lag_seconds"]
    assert lag.count == 2 and lag.mean is not None and 0 < lag.mean < 10


def _assert_lag_is_seconds(job: dict[str, Any]) -> None:
    ended = provider_moment(job["provider_times"]["end_time"], ZONE)
    finished = datetime.fromisoformat(job["timestamps"]["succeeded"]).timestamp()
    assert ended is not None and 0 < finished - ended < 10, (job["provider_times"], finished)
