"""The clients a worker process uses, built once per process and passed to the tasks."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import requests

from config.settings import Settings, get_settings
from wanedit.clients import make_redis, make_s3, make_store
from wanedit.jobs import JobStore
from wanedit.process import PerProcess
from workers.client import ProviderClient, make_session
from workers.schedule import PollPolicy


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    provider: ProviderClient
    s3: Any
    downloads: requests.Session
    clock: Callable[[], float] = time.time
    rand: Callable[[], float] = field(default=random.random)

    @property
    def poll_policy(self) -> PollPolicy:
        s = self.settings
        return PollPolicy(s.poll_first_delay, s.poll_interval, s.poll_max_interval)


def build_context(settings: Settings) -> WorkerContext:
    client = make_redis(settings)
    return WorkerContext(
        settings=settings,
        redis=client,
        store=make_store(settings, client),
        provider=ProviderClient(
            make_session(),
            settings.dashscope_http_base_url,
            settings.api_key(),
            connect_timeout=settings.http_connect_timeout,
            read_timeout=settings.http_read_timeout,
        ),
        s3=make_s3(settings),
        # Result downloads use their own session: the provider key is never sent to them.
        downloads=make_session(),
    )


# After a fork each child must build its own connections: workers.app resets this.
_context = PerProcess(lambda: build_context(get_settings()))
get_context = _context.get
reset_context = _context.reset
