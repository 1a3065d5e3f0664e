"""The Celery configuration, built from the settings. Producers and workers share it."""

from __future__ import annotations

from typing import Any

from wanedit.config.settings import Settings
from wanedit.cron import parse_cron
from wanedit.errors import ConfigError

ADMIT_TASK = "wanedit.admit"
SUBMIT_TASK = "wanedit.submit"
POLL_TASK = "wanedit.poll"
WATCH_TASK = "wanedit.watch"
FINISH_TASK = "wanedit.finish"
CANCEL_TASK = "wanedit.cancel"
RECONCILE_TASK = "wanedit.reconcile"
SWEEP_TASK = "wanedit.sweep"
# Called by name from other languages: the one task whose arguments are a request, not an id.
ENQUEUE_TASK = "wanedit.enqueue"
DELIVER_TASK = "wanedit.deliver"
BATCH_TASK = "wanedit.batch"
# One chunk of a scheduled batch: the next lines of its manifest, then the next chunk.
BATCH_CHUNK_TASK = "wanedit.batch_chunk"

# Longer than any countdown or time limit wanedit uses, so Redis never redelivers a message
# that a worker is still holding for a scheduled poll.
VISIBILITY_TIMEOUT = 3 * 3600
TASK_TIME_LIMIT = 15 * 60
# A batch chunk takes no new line after this long, well inside its soft time limit.
BATCH_CHUNK_SECONDS = 10 * 60
# A scheduled batch's run lock outlives any chunk (its hard time limit) by a minute, so a chunk
# that was killed holds it back for at most that long.
BATCH_LEASE = TASK_TIME_LIMIT + 60


def check_worker(settings: Settings) -> None:
    """What a worker needs before its first task: a key for every account, and no countdown
    that could outlive the broker's visibility timeout."""
    settings.check_worker()
    if longest_wait(settings) >= VISIBILITY_TIMEOUT:
        raise ConfigError(
            f"a countdown of {longest_wait(settings):.0f} s would outlive the broker's visibility "
            f"timeout of {VISIBILITY_TIMEOUT} s (lower the WANEDIT_* intervals)"
        )


def longest_wait(settings: Settings) -> float:
    """The longest countdown or time limit a wanedit message can be held for."""
    return max(
        TASK_TIME_LIMIT,
        settings.poll_max_interval,
        settings.slot_lease_seconds,
        settings.retry_cap,
        settings.reconcile_delay,
        settings.sweep_interval,
        30.0,  # the admission tick while the daily cap holds jobs back
    )


def batch_beat_entries(settings: Settings) -> dict[str, Any]:
    """One beat entry per scheduled batch; the task itself makes sure one run per slot."""
    entries = {}
    for schedule in settings.batch_schedules:
        entries[f"wanedit-batch-{schedule.name}"] = {
            "task": BATCH_TASK,
            "schedule": parse_cron(schedule.cron),
            "args": [schedule.name],
        }
    return entries


def celery_config(settings: Settings) -> dict[str, Any]:
    # Celery reads the visibility timeout from the broker's transport options (producers and
    # workers) and, for a Redis result backend, from the backend's: the same value everywhere.
    transport = {"visibility_timeout": VISIBILITY_TIMEOUT}
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": dict(transport),
        "broker_connection_retry_on_startup": True,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": settings.queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": TASK_TIME_LIMIT,
        "task_soft_time_limit": TASK_TIME_LIMIT - 60,
        # SIGTERM: stop taking messages, let running tasks finish for this long, then requeue.
        "worker_soft_shutdown_timeout": settings.soft_shutdown_timeout,
        "worker_enable_soft_shutdown_on_idle": True,
        "beat_schedule": {
            "wanedit-sweep": {"task": SWEEP_TASK, "schedule": settings.sweep_interval},
            **batch_beat_entries(settings),
        },
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }
