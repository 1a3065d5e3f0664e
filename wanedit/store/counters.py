"""The cluster-wide counters: one Redis hash shared by every worker process and machine.

What a job's end adds is computed in wanedit.metrics (pure) and applied by the transition
script; this writes the other counters and reads everything back, with the live gauges, as one
`Snapshot`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from wanedit.metrics import AccountLoad, Snapshot, counters_from, field_name, histograms_from
from wanedit.store.accounts import parse
from wanedit.store.admission import PRIORITIES
from wanedit.store.keys import Keys

log = logging.getLogger("wanedit.metrics")


class Counters:
    """Writes counters into the metrics hash, and reads everything back as a Snapshot."""

    def __init__(self, client: redis.Redis, *, key_prefix: str) -> None:
        self.redis = client
        self.keys = Keys(key_prefix)

    def add(self, increments: Mapping[str, float]) -> None:
        """One round trip; a metric is never worth failing a task for."""
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for name, amount in increments.items():
                    pipe.hincrbyfloat(self.keys.metrics, name, amount)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics not recorded (%s): %s", exc.__class__.__name__, exc)

    def provider_error(self, code: str) -> None:
        self.add({field_name("provider_errors_total", code=code): 1})

    def snapshot(self, *, accounts: Sequence[tuple[str, int]], broker_queue: str) -> Snapshot:
        """Counters, and the live gauges: each account's slots in use (`accounts` as name and
        concurrency), the backlogs, and the length of the Celery queue's list."""
        keys = self.keys
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.metrics)
            for name, _concurrency in accounts:
                pipe.zcard(keys.slots(name))
            for priority in PRIORITIES:
                pipe.zcard(keys.backlog(priority))
            pipe.llen(broker_queue)
            pipe.hgetall(keys.account_pauses)
            answers: list[Any] = pipe.execute()
        raw: Mapping[str, str] = answers[0] or {}
        loads = answers[1 : 1 + len(accounts)]
        depths = answers[1 + len(accounts) : 1 + len(accounts) + len(PRIORITIES)]
        pauses = {name: parse(raw).code for name, raw in (answers[-1] or {}).items()}
        return Snapshot(
            counters=counters_from(raw),
            histograms=histograms_from(raw),
            accounts=[
                AccountLoad(name, int(count), concurrency, pauses.get(name))
                for (name, concurrency), count in zip(accounts, loads, strict=True)
            ],
            queue_depth={
                priority: int(depth) for priority, depth in zip(PRIORITIES, depths, strict=True)
            },
            broker_queue=int(answers[-2]),
        )
