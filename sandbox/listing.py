"""``GET /tasks``: its query, the 24-hour window, the order and the paging. Pure.

From docs/dashscope.md ("The task list"): filters ``task_id``, ``start_time``, ``end_time``
(``YYYYMMDDhhmmss`` in the provider's zone), ``model_name``, ``status`` (PENDING, RUNNING,
SUCCEEDED, FAILED, CANCELED, UNKNOWN), ``page_no`` (default 1), ``page_size`` (default 10). No
times: the last 24 h. Only ``end_time``: the 24 h before it. Only ``start_time``: the 24 h after
it. A window may not span more than 24 h. The window filters on the submit time (``gmt_create``).

Sandbox choices where the docs are silent:

- Both window ends are inclusive at the whole second (the format's precision): a task submitted
  at 12:00:00.700 is inside a window ending at ``...120000``.
- A window over 24 h, or one that ends before it starts, is refused with 400
  ``InvalidParameter`` (the provider's exact wording is unconfirmed).
- ``page_size`` is at most ``MAX_PAGE_SIZE`` (100); ``page_no`` and ``page_size`` outside their
  ranges are refused with 400 ``InvalidParameter``. A page past the last one is empty.
  ``total_page`` is 0 when nothing matches.
- ``api_key_id`` and ``region`` filters are accepted because the official SDK can send them;
  they match the rows' fields exactly. Other parameters are ignored.
- Order: ``"newest"`` first (as in the doc's example) or ``"shuffled"``: a fixed pseudo-random
  order by task id, the same for every call, so paging stays consistent while no time order
  holds (clients must page with ``total_page`` and never assume an order).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from wanedit.sandbox.answers import parse_list_time
from wanedit.sandbox.errors import invalid_parameter
from wanedit.sandbox.tasks import STATUSES, UNKNOWN

DAY = 86400
MAX_PAGE_SIZE = 100
LIST_STATUSES = (*STATUSES, UNKNOWN)
ROW_FILTERS = ("task_id", "model_name", "status", "api_key_id", "region")


@dataclass(frozen=True)
class ListQuery:
    """A checked list query: the window in whole unix seconds (both ends inclusive)."""

    first_second: int
    last_second: int
    filters: Mapping[str, str]
    page_no: int = 1
    page_size: int = 10

    def in_window(self, submit_at: float) -> bool:
        return self.first_second <= int(submit_at // 1) <= self.last_second

    def matches(self, row: Mapping[str, Any]) -> bool:
        return all(row.get(name) == value for name, value in self.filters.items())


def parse_query(args: Mapping[str, str], now: float, zone: tzinfo) -> ListQuery:
    """Check the query arguments; raise ApiError (400) for a bad one."""
    page_no = _int_arg(args, "page_no", 1, 1, 1_000_000)
    page_size = _int_arg(args, "page_size", 10, 1, MAX_PAGE_SIZE)
    first, last = window(args.get("start_time"), args.get("end_time"), now, zone)
    filters = {name: args[name] for name in ROW_FILTERS if args.get(name)}
    status = filters.get("status")
    if status is not None and status not in LIST_STATUSES:
        raise invalid_parameter(f"status: {status!r} is not one of {', '.join(LIST_STATUSES)}.")
    return ListQuery(first, last, filters, page_no, page_size)


def window(start: str | None, end: str | None, now: float, zone: tzinfo) -> tuple[int, int]:
    """The first and last second of the submit-time window the list covers."""
    first = parse_list_time("start_time", start, zone) if start else None
    last = parse_list_time("end_time", end, zone) if end else None
    if first is None and last is None:
        last = int(now // 1)
    if first is None:
        assert last is not None
        return last - DAY, last
    if last is None:
        return first, first + DAY
    if last < first:
        raise invalid_parameter("end_time: must not be before start_time.")
    if last - first > DAY:
        raise invalid_parameter("start_time, end_time: the window may not span more than 24 h.")
    return first, last


def shuffle_key(salt: str, task_id: str) -> str:
    """The sort key of a task in the ``"shuffled"`` order."""
    return hashlib.sha256(f"{salt}:{task_id}".encode()).hexdigest()


def page(rows: Sequence[dict[str, Any]], query: ListQuery) -> dict[str, Any]:
    """The list answer (without request_id) for the matching rows, in their order."""
    size = query.page_size
    first = (query.page_no - 1) * size
    return {
        "total": len(rows),
        "total_page": (len(rows) + size - 1) // size,
        "page_no": query.page_no,
        "page_size": size,
        "data": list(rows[first : first + size]),
    }


def _int_arg(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = args.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise invalid_parameter(f"{name}: {text!r} must be an integer in [{low}, {high}].")
    return int(text)
