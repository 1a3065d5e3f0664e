"""The two indexes over job records that the sweeper reads: sorted sets of job ids by when
something is next due."""

from __future__ import annotations

from typing import Any

import redis

from wanedit.store.keys import Keys


class Indexes:
    """The due index (active jobs by when their next step is due) and the callbacks index
    (ended jobs by when their next callback attempt is due)."""

    redis: redis.Redis
    keys: Keys

    def set_due(self, job_id: str, at: float) -> None:
        self.redis.zadd(self.keys.due, {job_id: at})

    def due_at(self, job_id: str) -> float | None:
        score: Any = self.redis.zscore(self.keys.due, job_id)
        return None if score is None else float(score)

    def overdue(self, before: float, limit: int) -> list[str]:
        return self._before(self.keys.due, before, limit)

    def forget_due(self, job_id: str) -> None:
        self.redis.zrem(self.keys.due, job_id)

    def callbacks_overdue(self, before: float, limit: int) -> list[str]:
        return self._before(self.keys.callbacks, before, limit)

    def forget_callbacks(self, job_id: str) -> None:
        """Nothing more is owed for this job (its record expired)."""
        self.redis.zrem(self.keys.callbacks, job_id)

    def _before(self, key: str, before: float, limit: int) -> list[str]:
        ids: Any = self.redis.zrangebyscore(key, "-inf", before, start=0, num=limit)
        return [str(job_id) for job_id in ids]
