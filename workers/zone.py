"""Each account's provider zone in a worker process: configured, else measured, else Beijing.

A measurement comes from the account's own answers: the `submit_time` a task's first query
shows against the moment its create was sent, or (before any task of ours was seen) a row of
the task list, whose `gmt_create` has no zone, against the same task's `submit_time`. It is
kept in Redis for every process; a process re-reads it at most every `CACHE_SECONDS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

from wanedit.provider_time import measured_offset
from wanedit.store.zones import ZoneStore
from wanedit.workers.policy.zone import ZoneChoice, choose, disagrees

log = logging.getLogger("wanedit.workers")
CACHE_SECONDS = 60.0


class AccountZones:
    """The zone of each account's provider times, as this process reads them."""

    def __init__(
        self,
        store: ZoneStore,
        configured: Mapping[str, float | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.configured = dict(configured)
        self.clock = clock
        self._cache: dict[str, tuple[float, float | None]] = {}
        self._warned: set[str] = set()

    def choice(self, account: str) -> ZoneChoice:
        configured = self.configured.get(account)
        if configured is not None and account in self._warned:
            return choose(configured, None)
        return choose(configured, self.learned(account))

    def offset(self, account: str) -> float:
        return self.choice(account).offset

    def learned(self, account: str) -> float | None:
        now = self.clock()
        cached = self._cache.get(account)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            measured = self.store.get(account)
        except redis.RedisError as exc:  # Redis away: keep what this process knew
            log.info("account %s: provider zone not read (%s)", account, exc)
            return cached[1] if cached else None
        value = measured.offset if measured else None
        self._cache[account] = (now, value)
        self._warn_once(account, value)
        return value

    def learn(self, account: str, text: Any, moment: float, how: str) -> float | None:
        """Measure the zone from a provider time string naming unix time `moment`; record it
        when it is one. Returns the measured zone (None: no zone could be read)."""
        offset = measured_offset(text, moment)
        if offset is None:
            return None
        now = self.clock()
        cached = self._cache.get(account)
        if cached is None or cached[1] != offset or now - cached[0] >= CACHE_SECONDS:
            try:
                self.store.record(account, offset, at=now, how=how)
            except redis.RedisError as exc:  # measured again by the next task
                log.info("account %s: provider zone not recorded (%s)", account, exc)
            if cached is not None and cached[1] is not None and cached[1] != offset:
                log.warning(
                    "account %s: provider times now read as UTC%+g (measured before: UTC%+g)",
                    account,
                    offset,
                    cached[1],
                )
            self._cache[account] = (now, offset)
        self._warn_once(account, offset)
        return offset

    def _warn_once(self, account: str, learned: float | None) -> None:
        configured = self.configured.get(account)
        if account in self._warned or not disagrees(configured, learned):
            return
        self._warned.add(account)
        log.warning(
            "account %s: the provider's times measure as UTC%+g, but UTC%+g is configured "
            "(utc_offset / WANEDIT_PROVIDER_UTC_OFFSET); the configured zone is used",
            account,
            learned,
            configured,
        )


def learn_from_list(
    zones: AccountZones,
    account: str,
    client: Any,
    model: str,
    pace: Callable[[], None] | None = None,
) -> float | None:
    """Measure the account's zone without a task of our own: the newest row of its task list
    (last 24 h, no time filter, so no zone is assumed) carries `gmt_create` in epoch
    milliseconds; the same task's query carries `submit_time` in the provider's zone. None when
    the account made no task in 24 h. Costs two queries; provider errors are the caller's."""
    page = client.list_recent(model, 1, 1)
    row = next((row for row in page.rows if row.submitted is not None), None)
    if row is None or row.submitted is None:
        return None
    if pace is not None:
        pace()
    task = client.get(row.task_id)
    return zones.learn(account, task.times.get("submit_time"), row.submitted, f"list {row.task_id}")
