"""Five-field crontab expressions (UTC) and the slot a run belongs to. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# (name, lowest, highest) for minute, hour, day of month, month, day of week (0 = Sunday).
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
# Beat fires within seconds of a slot; a run this late belongs to no slot (it is a manual one).
LOOKBACK_MINUTES = 60


@dataclass(frozen=True)
class Cron:
    expression: str
    minute: frozenset[int]
    hour: frozenset[int]
    day: frozenset[int]
    month: frozenset[int]
    weekday: frozenset[int]
    day_restricted: bool
    weekday_restricted: bool

    def matches(self, when: datetime) -> bool:
        if when.minute not in self.minute or when.hour not in self.hour:
            return False
        if when.month not in self.month:
            return False
        day_ok = when.day in self.day
        weekday_ok = (when.weekday() + 1) % 7 in self.weekday
        # Cron's own rule: with both restricted, either one matching is enough.
        if self.day_restricted and self.weekday_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


def _values(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                first, last = base.split("-", 1)
                start, end = int(first), int(last)
            else:
                start = int(base)
                end = high if step_text else start
        except ValueError:
            raise ValueError(
                f"{name} field {text!r} is not a number, range, list or step"
            ) from None
        if step < 1 or not low <= start <= end <= high:
            raise ValueError(f"{name} field {text!r} is outside {low} to {high}")
        values.update(range(start, end + 1, step))
    return frozenset(value % 7 if name == "weekday" else value for value in values)


def parse_cron(expression: str) -> Cron:
    """Parse `minute hour day month weekday`; raises ValueError naming the bad field."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(f"{expression!r} has {len(parts)} fields; a crontab has 5")
    minute, hour, day, month, weekday = (
        _values(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)
    )
    return Cron(
        expression,
        minute,
        hour,
        day,
        month,
        weekday,
        day_restricted=parts[2] != "*",
        weekday_restricted=parts[4] != "*",
    )


def slot_of(cron: Cron, now: datetime) -> datetime | None:
    """The latest time the crontab names at or before `now` (to the minute), within the lookback."""
    minute = now.replace(second=0, microsecond=0)
    for back in range(LOOKBACK_MINUTES + 1):
        candidate = minute - timedelta(minutes=back)
        if cron.matches(candidate):
            return candidate
    return None
