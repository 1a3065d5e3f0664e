"""The `/metrics` server over real HTTP: families from a snapshot, Redis down, a taken port."""

from __future__ import annotations

import socket

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from wanedit.metrics import AccountLoad, Snapshot, counters_from, histograms_from, observe
from wanedit.sandbox.stack import free_port
from wanedit.workers.metrics import serve

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(answer.text)
    }


def test_served_families_and_their_types():
    raw = {"jobs_total|status=succeeded": "2", "provider_errors_total|code=Throttling": "5"}
    raw.update({name: str(value) for name, value in observe("polls_per_job", 3).items()})
    snapshot = Snapshot(
        counters=counters_from(raw),
        histograms=histograms_from(raw),
        accounts=[AccountLoad("sg", 1, 5)],
        queue_depth={"interactive": 2, "batch": 9},
        broker_queue=4,
    )
    port = free_port()
    server = serve(port, lambda: snapshot)
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    finally:
        server.shutdown()
    assert families["wanedit_jobs"].type == "counter"
    assert families["wanedit_polls_per_job"].type == "histogram"
    assert families["wanedit_free_slots"].type == "gauge"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("wanedit_jobs_total", (("status", "succeeded"),))] == 2
    assert samples[("wanedit_jobs_total", (("status", "canceled"),))] == 0  # always shown
    assert samples[("wanedit_provider_errors_total", (("code", "Throttling"),))] == 5
    assert samples[("wanedit_images_stored_total", ())] == 0
    assert samples[("wanedit_inflight_tasks", (("account", "sg"),))] == 1
    assert samples[("wanedit_free_slots", (("account", "sg"),))] == 4
    assert samples[("wanedit_queue_depth", (("priority", "batch"),))] == 9
    assert samples[("wanedit_broker_queue_length", ())] == 4
    assert samples[("wanedit_polls_per_job_bucket", (("le", "2.0"),))] == 0
    assert samples[("wanedit_polls_per_job_bucket", (("le", "3.0"),))] == 1
    assert samples[("wanedit_polls_per_job_bucket", (("le", "+Inf"),))] == 1
    assert samples[("wanedit_polls_per_job_count", ())] == 1
    assert samples[("wanedit_redis_up", ())] == 1


def test_a_scrape_while_redis_is_down_says_so_and_nothing_else():
    def down() -> Snapshot:
        raise redis.ConnectionError("Connection refused")

    port = free_port()
    server = serve(port, down)
    try:
        assert scrape(port) == {"wanedit_redis_up": [({}, 0.0)]}
    finally:
        server.shutdown()


def test_a_taken_port_is_an_error_at_start():
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        with pytest.raises(OSError):
            serve(taken.getsockname()[1], Snapshot)
