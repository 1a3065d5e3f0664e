"""The live mode's probe stopped part way (Ctrl-C): its tasks still PENDING are canceled, so they
are never billed. On the sandbox over HTTP and a real Redis (the probe's calls are paced by the
deployment's own query rate there)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import make_image
from wanedit.config.clients import make_admission, make_redis
from wanedit.config.settings import load_settings
from wanedit.doctor.live import Live, plan_for
from wanedit.images import encode_data_uri
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.store.keys import Keys
from wanedit.store.zones import ZoneStore
from wanedit.workers.client import ProviderClient, make_session
from wanedit.workers.zone import AccountZones

pytestmark = pytest.mark.integration


def test_a_stopped_probe_cancels_its_pending_tasks(redis_url, run_id):
    server = SandboxServer(
        SandboxConfig(api_keys=("sk-live",), duration_min=60.0, duration_max=60.0)
    ).start()
    settings = load_settings(
        redis_url=redis_url,
        key_prefix=f"doctor-live-{run_id}",
        dashscope_api_key="sk-live",
        dashscope_http_base_url=server.base_url,
    )
    client = make_redis(settings)
    zones = AccountZones(ZoneStore(client, Keys(settings.key_prefix)), {"default": None})
    [account] = settings.accounts
    live = Live(
        settings=settings,
        zones=zones,
        admission=make_admission(settings, client),
        clients={"default": ProviderClient(make_session(), server.base_url, "sk-live")},
        downloads=make_session(),
        echo=lambda line: None,
        timeout=120.0,
    )
    image = encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png")

    def stop_once_all_are_sent() -> None:
        deadline = time.monotonic() + 30
        while server.stats()["creates"] < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # a list read or two
        live.stopping.set()

    stopper = threading.Thread(target=stop_once_all_are_sent)
    stopper.start()
    try:
        checks, sections = live.run(plan_for([account], None), image)
    finally:
        stopper.join()
        stats = server.stats()
        server.stop()
    assert stats["creates"] == 7
    # The 5 that started run (and bill) on; the 2 waiting for a slot are canceled.
    assert stats["cancels"] == 2 and stats["tasks_by_status"]["CANCELED"] == 2
    probe = sections["default"]["probe"]
    assert probe["extra_tasks"] == "accepted and left PENDING until a slot freed"
    assert [check.status for check in checks] == ["fail", "fail"]  # not ended; no edit done
