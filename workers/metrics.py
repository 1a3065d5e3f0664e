"""`/metrics` for Prometheus, served by each worker's main process when WANEDIT_METRICS_PORT is
set. The numbers are cluster-wide, read from Redis at scrape time: every worker serves the same
totals, so dashboards take max() over workers, never sum()."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from wanedit.metrics import TERMINAL_STATUSES, Snapshot

log = logging.getLogger("wanedit.metrics")

# name (without wanedit_ and _total), help, labels, values that are always shown (at 0 too).
COUNTERS: list[tuple[str, str, tuple[str, ...], tuple[tuple[str, ...], ...]]] = [
    ("jobs", "Jobs that ended, by terminal status.", ("status",), tuple(zip(TERMINAL_STATUSES))),
    ("job_errors", "Failed jobs, by error code.", ("code",), ()),
    (
        "provider_errors",
        "Errors from the provider: error answers and failed calls, and tasks it ended FAILED "
        "or UNKNOWN, by code.",
        ("code",),
        (),
    ),
    ("images_stored", "Result images copied into S3.", (), ((),)),
    ("images_billed", "Images the provider billed, by account.", ("account",), ()),
    ("cost", "Cost of billed images, by account and currency.", ("account", "currency"), ()),
    (
        "provider_events",
        "Task-end events the provider pushed to `wanedit provider-events`, by outcome: polled, "
        "unknown, duplicate, rejected, unauthorized.",
        ("outcome",),
        (),
    ),
]
HISTOGRAM_HELP = {
    "task_duration_seconds": "Provider task durations (end_time - scheduled_time), at job end.",
    "completion_lag_seconds": "From the provider's end of a task to the job's completion event.",
    "polls_per_job": "Status queries per job that reached the provider, at job end.",
}


class ClusterCollector:
    """Turns a Snapshot read at scrape time into Prometheus metric families."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("wanedit_redis_up", "1 if Redis answered this scrape, else 0.")
        try:
            snapshot = self._read()
        except redis.RedisError as exc:
            log.warning("metrics: Redis did not answer (%s)", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families(snapshot)


def families(snapshot: Snapshot) -> Iterator[Metric]:
    for name, help_text, labels, always in COUNTERS:
        family = CounterMetricFamily(f"wanedit_{name}", help_text, labels=list(labels))
        values = {
            tuple(dict(found).get(label, "") for label in labels): value
            for found, value in snapshot.counters.get(f"{name}_total", {}).items()
        }
        for key in always:
            values.setdefault(key, 0.0)
        for key, value in sorted(values.items()):
            family.add_metric(list(key), value)
        yield family
    inflight = GaugeMetricFamily(
        "wanedit_inflight_tasks", "Provider tasks in flight, by account.", labels=["account"]
    )
    free = GaugeMetricFamily(
        "wanedit_free_slots", "Free provider slots, by account.", labels=["account"]
    )
    paused = GaugeMetricFamily(
        "wanedit_account_paused",
        "1 while the account is paused (the provider refused it: key, region, bill), else 0.",
        labels=["account"],
    )
    for account in snapshot.accounts:
        inflight.add_metric([account.name], account.in_flight)
        free.add_metric([account.name], account.free)
        paused.add_metric([account.name], 1 if account.paused else 0)
    yield inflight
    yield free
    yield paused
    depth = GaugeMetricFamily(
        "wanedit_queue_depth", "Jobs waiting in the backlog, by priority.", labels=["priority"]
    )
    for priority, count in snapshot.queue_depth.items():
        depth.add_metric([priority], count)
    yield depth
    yield GaugeMetricFamily(
        "wanedit_broker_queue_length",
        "Celery messages ready on the worker queue (not those held for a countdown).",
        value=snapshot.broker_queue,
    )
    for name, histogram in snapshot.histograms.items():
        yield HistogramMetricFamily(
            f"wanedit_{name}",
            HISTOGRAM_HELP[name],
            buckets=histogram.buckets,
            sum_value=histogram.sum,
        )


def serve(port: int, read: Callable[[], Snapshot]) -> Any:
    """Serve `/metrics` on `port` (all interfaces) from a thread; returns the server."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(read))
    server, _thread = start_http_server(port, addr="0.0.0.0", registry=registry)
    return server
