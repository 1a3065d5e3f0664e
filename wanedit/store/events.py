"""Reading completion events from the Redis Stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import redis


def read_events(
    client: redis.Redis,
    stream: str,
    *,
    follow: bool = False,
    start: str = "0-0",
    block_ms: int = 5000,
    count: int = 100,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (entry id, event) from `start`; with `follow`, wait for new entries forever."""
    last = start
    while True:
        entries: Any
        if follow:
            answer: Any = client.xread({stream: last}, count=count, block=block_ms) or []
            entries = answer[0][1] if answer else []
        else:
            entries = client.xrange(stream, min=f"({last}" if last != "0-0" else "-", count=count)
        for entry_id, fields in entries:
            last = entry_id
            try:
                yield entry_id, json.loads(fields.get("data", "{}"))
            except json.JSONDecodeError:
                continue
        if not follow and len(entries) < count:
            return
