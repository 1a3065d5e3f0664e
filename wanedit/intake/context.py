"""The producer's clients, built once per process and reused across requests (thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery

from wanedit.config.celery import celery_config
from wanedit.config.clients import make_admission, make_redis, make_s3, make_store
from wanedit.config.settings import Settings, get_settings
from wanedit.process import PerProcess
from wanedit.store.admission import Admission
from wanedit.store.jobs import JobStore


@dataclass
class ProducerContext:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    s3: Any
    celery: Celery
    admission: Admission
    known_buckets: set[str] = field(default_factory=set)


def build_context(settings: Settings) -> ProducerContext:
    client = make_redis(settings)
    # A Celery app with no tasks: producers send by task name and never import the workers.
    celery = Celery("wanedit-producer")
    celery.conf.update(celery_config(settings))
    celery.conf.broker_connection_retry = False
    celery.conf.broker_connection_max_retries = 0
    return ProducerContext(
        settings=settings,
        redis=client,
        store=make_store(settings, client),
        s3=make_s3(settings),
        celery=celery,
        admission=make_admission(settings, client),
    )


_context = PerProcess(lambda: build_context(get_settings()))
get_context = _context.get
reset_context = _context.reset
