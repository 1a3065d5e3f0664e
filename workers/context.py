"""The clients a worker process uses, built once per process and passed to the tasks."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import requests

from config.settings import Settings, get_settings
from wanedit.clients import make_redis, make_s3, make_store
from wanedit.jobs import JobStore
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


_lock = threading.Lock()
_context: WorkerContext | None = None


def get_context() -> WorkerContext:
    global _context
    with _lock:
        if _context is None:
            _context = build_context(get_settings())
        return _context


def reset_context() -> None:
    """Forget the clients (after a fork, so each child builds its own connections)."""
    global _context
    with _lock:
        _context = None
