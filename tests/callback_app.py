"""Another team's Celery app for the tests: it takes wanedit's completion events by task name.

Run as `celery -A tests.callback_app worker -Q QUEUE`; each event goes onto the Redis list named
by CALLBACK_TEST_LIST, as JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from celery import Celery

BROKER = os.environ["CALLBACK_TEST_REDIS_URL"]
app = Celery("callback-test", broker=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="tests.callback_app.record_event")
def record_event(event: dict[str, Any]) -> None:
    client = redis.Redis.from_url(BROKER)
    client.rpush(os.environ["CALLBACK_TEST_LIST"], json.dumps(event))
