"""The provider's clock, read and written in one place. Pure.

DashScope writes times in its own zone with no zone marker: Beijing time (UTC+8) in query
answers (`"2025-10-23 16:18:16.009"`), in events (`"2023-10-25 09:45:16"`) and in the task list's
`start_time`/`end_time` filters (`20251023161816`). The list's rows carry zone-free integer
milliseconds since the epoch. Everything wanedit compares with its own clock goes through here,
so a worker's own zone (`TZ`) never matters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

BEIJING_UTC_OFFSET = 8.0
# Time zones are whole quarter hours east or west of UTC.
QUARTER_HOUR = 900.0
# A measured zone is trusted only when the difference is this close to a quarter hour: the
# network's delay and a small clock skew fit in it, an ambiguous reading does not.
ZONE_SLACK = 300.0
ZONE_LIMIT = 14.0
_TEXT_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
_FILTER_FORMAT = "%Y%m%d%H%M%S"


def provider_moment(text: Any, utc_offset_hours: float = BEIJING_UTC_OFFSET) -> float | None:
    """A provider time string in its zone (`utc_offset_hours` east of UTC) as unix seconds."""
    if not isinstance(text, str):
        return None
    for layout in _TEXT_FORMATS:
        try:
            moment = datetime.strptime(text.strip(), layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        return moment.timestamp() - utc_offset_hours * 3600
    return None


def epoch_millis(value: Any) -> float | None:
    """A list row's integer milliseconds since the epoch as unix seconds (None if absent)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value) / 1000.0


def filter_stamp(moment: float, utc_offset_hours: float = BEIJING_UTC_OFFSET) -> str:
    """Unix seconds as a task-list filter, `YYYYMMDDhhmmss` in the provider's zone."""
    local = datetime.fromtimestamp(int(moment), tz=UTC) + timedelta(hours=utc_offset_hours)
    return local.strftime(_FILTER_FORMAT)


def measured_offset(text: Any, moment: float, slack: float = ZONE_SLACK) -> float | None:
    """The zone (hours east of UTC, to the quarter hour) in which the provider time string
    `text` names the unix time `moment` (or a moment at most `slack` seconds away from it).

    None when the text is no provider time, or the difference is no zone: further than `slack`
    from a whole quarter hour, or beyond 14 hours."""
    wall = provider_moment(text, 0.0)
    if wall is None or not isinstance(moment, int | float) or isinstance(moment, bool):
        return None
    difference = wall - moment
    quarters = round(difference / QUARTER_HOUR)
    if abs(difference - quarters * QUARTER_HOUR) > slack:
        return None
    hours = quarters / 4 + 0.0  # never -0.0
    return hours if -ZONE_LIMIT <= hours <= ZONE_LIMIT else None
