"""Each account's provider zone as measured from its own answers, kept in Redis.

The provider writes its times in a zone it never names (Beijing time, UTC+8, by its own
examples). The workers and `wanedit doctor` measure it and record it here; a configured offset
always wins over it (`wanedit.workers.policy.zone`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from wanedit.provider_time import ZONE_LIMIT
from wanedit.store.keys import Keys

# A measurement is kept this long after the last one (every job's first poll renews it).
ZONE_TTL = 30 * 86400


@dataclass(frozen=True)
class Measured:
    """An account's measured zone: hours east of UTC, when (unix seconds) and from what."""

    offset: float
    at: float
    how: str


class ZoneStore:
    """Reads and writes the measured zones of one deployment's accounts."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def get(self, account: str) -> Measured | None:
        """The account's measured zone; None when none was measured (or the record is bad)."""
        data: Any = self.redis.hgetall(self.keys.provider_zone(account))
        return _measured(data or {})

    def record(self, account: str, offset: float, *, at: float, how: str) -> None:
        key = self.keys.provider_zone(account)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={"offset": repr(float(offset)), "at": repr(at), "how": how})
            pipe.expire(key, ZONE_TTL)
            pipe.execute()


def _measured(data: dict[str, Any]) -> Measured | None:
    try:
        offset, at = float(data["offset"]), float(data["at"])
    except (KeyError, TypeError, ValueError):
        return None
    if not -ZONE_LIMIT <= offset <= ZONE_LIMIT:
        return None
    return Measured(offset, at, str(data.get("how") or ""))
