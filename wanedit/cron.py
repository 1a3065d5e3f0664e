"""Crontab expressions (UTC) read by Celery's own parser, and the slot a run belongs to.

Beat fires scheduled batches from the `crontab` this module builds, so the setting is
checked, scheduled and matched against a run's time by one parser. Pure.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celery.schedules import crontab

# crontab(5) shorthands that Celery's parser does not read.
SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# The five fields in crontab(5) order: (Celery's name, name in messages, values accepted).
FIELDS = (
    ("minute", "minute", "0-59"),
    ("hour", "hour", "0-23"),
    ("day_of_month", "day", "1-31"),
    ("month_of_year", "month", "1-12 or jan-dec"),
    ("day_of_week", "weekday", "0-7 or sun-sat (0 and 7 are Sunday)"),
)
FORM = "a number, a range (1-5), a list (1,15) or a step (*/15, 0-30/10)"
# One part of a list: `*`, a value or a range, then an optional step. Celery's parser only
# anchors at the start (it would read `1-5/2/3` as `1-5/2`), so each part is checked whole.
_PART = re.compile(r"(\*|[A-Za-z0-9]+(-[A-Za-z0-9]+)?)(/[0-9]+)?")
# crontab(5) reads `5/15` as `5-59/15`; Celery's parser does not, so the range is written out.
_OPEN_STEP = re.compile(r"^([0-9]+)/([0-9]+)$")
_HIGHEST = {"minute": 59, "hour": 23, "day_of_month": 31, "month_of_year": 12, "day_of_week": 7}
# Beat fires within seconds of a slot; a run this late belongs to no slot (it is a manual one).
LOOKBACK_MINUTES = 60


def parse_cron(expression: str) -> crontab:
    """Celery's crontab for `minute hour day month weekday` (or a shorthand such as `@daily`);
    raises ValueError naming the bad field and the accepted form."""
    from celery.schedules import crontab

    text = SHORTHANDS.get(expression.strip().lower(), expression)
    if text.startswith("@"):
        raise ValueError(f"{expression!r} is not one of {', '.join(SHORTHANDS)}")
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"{expression!r} has {len(parts)} fields; a crontab has 5 "
            f"(minute hour day month weekday) or is one of {', '.join(SHORTHANDS)}"
        )
    fields = {
        field: _field(part, field, name, values)
        for part, (field, name, values) in zip(parts, FIELDS, strict=True)
    }
    try:
        return crontab(**fields)
    except ValueError as exc:  # the day and month fields name no date (the 31st of February)
        raise ValueError(f"{expression!r} names no date: {_reason(exc)}") from None


def _field(text: str, field: str, name: str, values: str) -> str | set[int]:
    """The field as Celery's crontab takes it, checked on its own so an error can name it."""
    from celery.schedules import ParseException, crontab, crontab_parser

    problem, spec = None, text
    parts = text.split(",")
    if not all(_PART.fullmatch(part) for part in parts):
        problem = "is not a number, range, list or step"
    elif field not in ("month_of_year", "day_of_week") and re.search("[A-Za-z]", text):
        problem = "has a name; names are for the month and weekday fields"
    if problem is None:
        high = _HIGHEST[field]
        spec = ",".join(_OPEN_STEP.sub(rf"\1-{high}/\2", part) for part in parts)
        try:
            if field == "day_of_week" and "7" in re.findall("[0-9]+", spec):
                # crontab(5) lets 7 name Sunday; Celery's parser stops at 6.
                return {day % 7 for day in crontab_parser(8).parse(spec)}
            crontab(**{field: spec})
            return spec
        except (ValueError, ParseException) as exc:
            problem = f"is not valid ({_reason(exc)})"
    raise ValueError(f"{name} field {text!r} {problem}; use {values} as {FORM}")


def _reason(exc: Exception) -> str:
    return str(exc).strip().rstrip(".") or exc.__class__.__name__


def fires_at(schedule: crontab, when: datetime) -> bool:
    """Whether beat fires `schedule` in the minute of `when`. As Celery has it, a day must be
    in both the day-of-month and the day-of-week fields."""
    return (
        when.minute in schedule.minute
        and when.hour in schedule.hour
        and when.day in schedule.day_of_month
        and when.month in schedule.month_of_year
        and when.isoweekday() % 7 in schedule.day_of_week
    )


def slot_of(schedule: crontab, now: datetime) -> datetime | None:
    """The latest minute `schedule` fires at or before `now`, within the lookback.

    Celery's crontab answers only forwards (`remaining_estimate`, `is_due`), so this walks
    back over its expanded sets a minute at a time."""
    minute = now.replace(second=0, microsecond=0)
    for back in range(LOOKBACK_MINUTES + 1):
        candidate = minute - timedelta(minutes=back)
        if fires_at(schedule, candidate):
            return candidate
    return None
