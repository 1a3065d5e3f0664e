"""Reading completion events from the Redis Stream, and telling a reader what was trimmed.

The stream is trimmed to about `WANEDIT_EVENTS_MAXLEN` entries: a reader that was away longer
than the stream holds may have missed entries, and `trimmed_after` says so, so the reader can
recover from the job records instead of going on blind.
"""

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


def _entry_id(value: str) -> tuple[int, int]:
    millis, _, seq = value.partition("-")
    return int(millis), int(seq or 0)


def trimmed_after(client: redis.Redis, stream: str, after: str) -> str | None:
    """When entries were trimmed and `after` is older than the oldest entry the stream still
    holds: that oldest entry's id (events between the two may never have been read). None when
    reading on from `after` misses nothing."""
    try:
        info: Any = client.xinfo_stream(stream)
    except redis.ResponseError:  # no stream yet: nothing was written, so nothing was trimmed
        return None
    first = info.get("first-entry")
    if not first or int(info.get("entries-added", 0)) <= int(info.get("length", 0)):
        return None
    oldest = str(first[0])
    return oldest if _entry_id(oldest) > _entry_id(after) else None
