"""The clients a worker process uses, built once per process and passed to the tasks."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis
import requests

from wanedit.config.clients import make_admission, make_metrics, make_redis, make_s3, make_store
from wanedit.config.settings import Settings, get_settings
from wanedit.process import PerProcess
from wanedit.store.admission import Admission
from wanedit.store.jobs import JobStore
from wanedit.store.zones import ZoneStore
from wanedit.urlguard import Resolver
from wanedit.workers.client import ProviderClient, make_session
from wanedit.workers.policy.events import events_plan
from wanedit.workers.policy.retry import RetryPolicy
from wanedit.workers.policy.schedule import Plan, PollPolicy, plan_for
from wanedit.workers.zone import AccountZones

DURATION_SAMPLES = 100


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    admission: Admission
    providers: dict[str, ProviderClient]
    s3: Any
    downloads: requests.Session
    clock: Callable[[], float] = time.time
    rand: Callable[[], float] = field(default=random.random)
    # Webhook deliveries have their own session too: nothing of the provider's goes to them.
    webhooks: requests.Session = field(default_factory=make_session)
    # Name resolution for the URL guard: each URL's host is resolved once, here, and connected
    # to at the address that was checked.
    resolve: Resolver = socket.getaddrinfo
    # Each account's provider zone: configured, else measured from its answers (built from
    # the settings when not given).
    account_zones: AccountZones | None = None

    @property
    def zones(self) -> AccountZones:
        if self.account_zones is None:
            self.account_zones = zones_for(self.settings, self.redis, self.store)
        return self.account_zones

    @property
    def poll_policy(self) -> PollPolicy:
        """The schedule used until enough task durations have been observed."""
        s = self.settings
        return PollPolicy(s.poll_first_delay, s.poll_interval, s.poll_max_interval)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The one backoff and retry budget of every retry path."""
        s = self.settings
        return RetryPolicy(base=s.retry_base, cap=s.retry_cap, budget=s.retry_max)

    def durations_key(self, account: str) -> str:
        return self.store.keys.durations(self.settings.model, account)

    def record_duration(self, account: str, seconds: float) -> None:
        key = self.durations_key(account)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, f"{seconds:.3f}")
            pipe.ltrim(key, 0, DURATION_SAMPLES - 1)
            pipe.expire(key, 7 * 86400)
            pipe.execute()

    def watching(self, account: str) -> bool:
        """Whether the account's list watch runs: in list mode, always with events off; with
        events on, only while a recent task ended without its event (`events_missed`)."""
        s = self.settings
        if s.poll_mode != "list":
            return False
        if not s.provider_events:
            return True
        return bool(self.redis.exists(self.store.keys.events_missed(account)))

    def missed_event(self, account: str) -> None:
        """A task on the account ended without its event: watch the account for a while."""
        seconds = self.settings.provider_events_watch_seconds
        if seconds > 0:
            self.redis.set(self.store.keys.events_missed(account), "1", ex=max(1, round(seconds)))

    def plan(self, account: str) -> Plan:
        """How a task on `account` is watched, from the account's recent task durations (in the
        events mode: when the safety-net looks come)."""
        raw: Any = self.redis.lrange(self.durations_key(account), 0, DURATION_SAMPLES - 1)
        s = self.settings
        # A task's own first poll renews its slot's lease before the lease can run out.
        longest = min(s.slot_lease_seconds * 0.9, s.poll_deadline)
        if s.provider_events and not self.watching(account):
            return events_plan(
                [float(value) for value in raw],
                factor=s.provider_events_first_factor,
                expected=s.provider_events_expected_duration,
                interval=s.provider_events_fallback_interval,
                longest=longest,
            )
        return plan_for(
            [float(value) for value in raw],
            default=self.poll_policy,
            min_interval=s.poll_min_interval,
            max_interval=s.poll_max_interval,
            lag_fraction=s.poll_lag_fraction,
            max_first_delay=longest,
            list_mode=s.poll_mode == "list",
            concurrency=s.account(account).concurrency,
        )


def zones_for(settings: Settings, client: redis.Redis, store: JobStore) -> AccountZones:
    configured = {account.name: account.utc_offset for account in settings.accounts}
    return AccountZones(ZoneStore(client, store.keys), configured)


def build_context(settings: Settings) -> WorkerContext:
    client = make_redis(settings)
    session = make_session()
    metrics = make_metrics(settings, client)
    store = make_store(settings, client)
    zones = zones_for(settings, client, store)
    return WorkerContext(
        settings=settings,
        redis=client,
        store=store,
        admission=make_admission(settings, client),
        providers={
            account.name: ProviderClient(
                session,
                account.base_url,
                account.key(),
                connect_timeout=settings.http_connect_timeout,
                read_timeout=settings.http_read_timeout,
                on_error=metrics.provider_error,
                zone=partial(zones.offset, account.name),
            )
            for account in settings.accounts
        },
        s3=make_s3(settings),
        # Result downloads use their own session: the provider key is never sent to them.
        downloads=make_session(),
        account_zones=zones,
    )


# After a fork each child must build its own connections: wanedit.workers.celery_app resets this.
_context = PerProcess(lambda: build_context(get_settings()))
get_context = _context.get
reset_context = _context.reset
