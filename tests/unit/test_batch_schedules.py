"""Scheduled batches: crontab fields, the slot a run belongs to, the setting and beat entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from celery.schedules import crontab

from wanedit.config.celery import BATCH_TASK, batch_beat_entries
from wanedit.config.settings import load_settings
from wanedit.cron import parse_cron, slot_of
from wanedit.errors import ConfigError


@pytest.mark.parametrize(
    ("expression", "field", "values"),
    [
        ("30 2 * * *", "minute", {30}),
        ("*/15 * * * *", "minute", {0, 15, 30, 45}),
        # crontab(5)'s `N/step` runs from N to the field's end.
        ("5/20 * * * *", "minute", {5, 25, 45}),
        ("0 1-3,22 * * *", "hour", {1, 2, 3, 22}),
        # A range may wrap past the end of the field, as Celery reads it.
        ("0 22-1 * * *", "hour", {22, 23, 0, 1}),
        ("0 0 * * 1-5", "day_of_week", {1, 2, 3, 4, 5}),
        ("0 0 * * mon-fri", "day_of_week", {1, 2, 3, 4, 5}),
        ("0 0 * * sat,sun", "day_of_week", {6, 0}),
        # 7 is Sunday too, alone or at the end of a range or step.
        ("0 0 * * 7", "day_of_week", {0}),
        ("0 0 * * 5-7", "day_of_week", {5, 6, 0}),
        ("0 0 * * 1/2", "day_of_week", {1, 3, 5, 0}),
        ("0 0 1,15 * *", "day_of_month", {1, 15}),
        ("0 0 * 6-12/3 *", "month_of_year", {6, 9, 12}),
        ("0 0 * jan-mar *", "month_of_year", {1, 2, 3}),
    ],
)
def test_crontab_fields(expression, field, values):
    assert getattr(parse_cron(expression), field) == values


@pytest.mark.parametrize(
    ("shorthand", "fields"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_shorthands_are_their_five_fields(shorthand, fields):
    assert parse_cron(shorthand) == parse_cron(fields)


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("30 2 * *", "has 4 fields; a crontab has 5 (minute hour day month weekday)"),
        ("@reboot", "'@reboot' is not one of @yearly, @annually"),
        ("60 2 * * *", "minute field '60' is not valid (Invalid end range: 60 > 59); use 0-59"),
        ("0 24 * * *", "hour field '24' is not valid (Invalid end range: 24 > 23); use 0-23"),
        ("0 0 0 * *", "day field '0' is not valid (Invalid beginning range: 0 < 1); use 1-31"),
        ("0 0 * * funday", "weekday field 'funday' is not valid"),
        ("0 0 * * 8", "weekday field '8' is not valid"),
        ("*/0 * * * *", "minute field '*/0' is not valid"),
        ("1-5/2/3 * * * *", "minute field '1-5/2/3' is not a number, range, list or step"),
        ("0 0 * * 1,", "weekday field '1,' is not a number, range, list or step"),
        ("0 mon * * *", "hour field 'mon' has a name; names are for the month and weekday"),
        ("0 0 31 2 *", "'0 0 31 2 *' names no date"),
    ],
)
def test_bad_crontabs_name_the_field_and_the_accepted_form(expression, error):
    with pytest.raises(ValueError) as caught:
        parse_cron(expression)
    assert error in str(caught.value)
    if " field " in error:
        assert "as a number, a range (1-5), a list (1,15) or a step (*/15" in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "now", "slot"),
    [
        # Beat fires a little after the minute: the run belongs to that minute.
        ("30 2 * * *", datetime(2026, 11, 25, 2, 30, 0, 900), datetime(2026, 11, 25, 2, 30)),
        ("30 2 * * *", datetime(2026, 11, 25, 2, 31, 5), datetime(2026, 11, 25, 2, 30)),
        # Two beats either side of a minute boundary still agree on the slot.
        ("*/15 * * * *", datetime(2026, 11, 25, 3, 0, 59), datetime(2026, 11, 25, 3, 0)),
        ("*/15 * * * *", datetime(2026, 11, 25, 3, 1, 0), datetime(2026, 11, 25, 3, 0)),
        # 2026-11-29 is a Sunday: not a weekday slot.
        ("30 2 * * 1-5", datetime(2026, 11, 29, 2, 30), None),
        ("30 2 * * mon-fri", datetime(2026, 11, 29, 2, 30), None),
        ("30 2 * * mon-fri", datetime(2026, 11, 27, 2, 30, 7), datetime(2026, 11, 27, 2, 30)),
        ("@daily", datetime(2026, 11, 27, 0, 0, 2), datetime(2026, 11, 27, 0, 0)),
        # Day of month and day of week, as beat has it: a 1st that is a Sunday.
        ("0 4 1 * 0", datetime(2026, 11, 1, 4, 0), datetime(2026, 11, 1, 4, 0)),
        ("0 4 1 * 0", datetime(2026, 11, 29, 4, 0), None),
        ("0 4 1 * 0", datetime(2026, 12, 1, 4, 0), None),
        ("30 2 * * *", datetime(2026, 11, 25, 4, 0), None),
    ],
)
def test_the_slot_of_a_run(expression, now, slot):
    assert slot_of(parse_cron(expression), now) == slot


@pytest.mark.parametrize(
    ("expression", "after"),
    [
        ("30 2 * * mon-fri", datetime(2026, 11, 27, 3, 0)),  # a Friday: next is Monday
        ("0 4 1 * 0", datetime(2026, 10, 1, 5, 0)),
        ("*/15 * * * *", datetime(2026, 11, 25, 3, 7)),
        ("0 0 * * 5-7", datetime(2026, 11, 27, 0, 1)),
    ],
)
def test_the_slot_is_where_beat_fires_next(expression, after):
    """Beat's own next run after `after` is a minute that slot_of names as its slot."""
    schedule = parse_cron(expression)
    last_run, delta, _ = schedule.remaining_delta(after.replace(tzinfo=UTC))
    fires = (last_run + delta).replace(tzinfo=None)
    assert fires > after
    assert slot_of(schedule, fires) == fires
    assert slot_of(schedule, fires - timedelta(minutes=1)) != fires


def test_schedules_setting_becomes_beat_entries(monkeypatch):
    schedules = [
        {"name": "nightly", "cron": "30 2 * * 1-5", "manifest": "s3://bkt/nightly.jsonl"},
        {"name": "workdays", "cron": "30 2 * * mon-fri", "manifest": "m.jsonl"},
        {"name": "midnight", "cron": "@daily", "manifest": "m.jsonl"},
        {
            "name": "weekly",
            "cron": "0 4 * * 7",
            "manifest": "/srv/m.csv",
            "output": "s3://out-bkt/x",
        },
    ]
    monkeypatch.setenv("WANEDIT_BATCH_SCHEDULES", json.dumps(schedules))
    settings = load_settings()
    assert settings.batch_schedule("weekly").output == "s3://out-bkt/x/"
    entries = batch_beat_entries(settings)
    assert entries["wanedit-batch-nightly"]["task"] == BATCH_TASK
    assert entries["wanedit-batch-nightly"]["args"] == ["nightly"]
    assert entries["wanedit-batch-nightly"]["schedule"] == crontab(
        minute="30", hour="2", day_of_week="1-5"
    )
    assert entries["wanedit-batch-workdays"]["schedule"] == crontab(
        minute="30", hour="2", day_of_week="mon-fri"
    )
    assert entries["wanedit-batch-midnight"]["schedule"] == crontab(minute="0", hour="0")
    assert entries["wanedit-batch-weekly"]["schedule"] == crontab(
        minute="0", hour="4", day_of_week="sun"
    )
    with pytest.raises(ConfigError, match="no schedule named 'daily'"):
        settings.batch_schedule("daily")


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ({"name": "n", "cron": "30 2 * *", "manifest": "m.jsonl"}, "has 4 fields"),
        ({"name": "n", "cron": "0 0 * * 8", "manifest": "m.jsonl"}, r"\[0\]\.cron: weekday"),
        ({"name": "n", "cron": "* * * * *", "manifest": "https://x/m.jsonl"}, "s3://bucket/key"),
        ({"name": "a b", "cron": "* * * * *", "manifest": "m.jsonl"}, "name"),
        ({"name": "n", "cron": "* * * * *"}, "manifest"),
    ],
)
def test_bad_schedules_fail_at_start_up(monkeypatch, schedule, error):
    monkeypatch.setenv("WANEDIT_BATCH_SCHEDULES", json.dumps([schedule]))
    with pytest.raises(ConfigError, match=error) as caught:
        load_settings()
    assert "WANEDIT_BATCH_SCHEDULES" in str(caught.value)
