"""The Celery configuration, built from the settings. Producers and workers share it."""

from __future__ import annotations

from typing import Any

from config.settings import Settings

ADMIT_TASK = "wanedit.admit"
SUBMIT_TASK = "wanedit.submit"
POLL_TASK = "wanedit.poll"
WATCH_TASK = "wanedit.watch"
FINISH_TASK = "wanedit.finish"
CANCEL_TASK = "wanedit.cancel"

# Longer than any countdown or time limit wanedit uses, so Redis never redelivers a message
# that a worker is still holding for a scheduled poll.
VISIBILITY_TIMEOUT = 3 * 3600


def celery_config(settings: Settings) -> dict[str, Any]:
    transport = {"visibility_timeout": VISIBILITY_TIMEOUT}
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": settings.queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": 15 * 60,
        "task_soft_time_limit": 14 * 60,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }
