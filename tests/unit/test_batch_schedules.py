"""Scheduled batches: crontab fields, the slot a run belongs to, the setting and beat entries."""

from __future__ import annotations

import json
from datetime import datetime

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
        ("0 1-3,22 * * *", "hour", {1, 2, 3, 22}),
        ("0 0 * * 1-5", "weekday", {1, 2, 3, 4, 5}),
        ("0 0 * * 7", "weekday", {0}),
        ("0 0 1,15 * *", "day", {1, 15}),
        ("0 0 * 6-12/3 *", "month", {6, 9, 12}),
    ],
)
def test_crontab_fields(expression, field, values):
    assert getattr(parse_cron(expression), field) == values


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("30 2 * *", "has 4 fields; a crontab has 5"),
        ("60 2 * * *", "minute field '60' is outside 0 to 59"),
        ("0 24 * * *", "hour field '24' is outside 0 to 23"),
        ("0 0 0 * *", "day field '0' is outside 1 to 31"),
        ("0 0 * * mon", "weekday field 'mon' is not a number, range, list or step"),
        ("*/0 * * * *", "minute field '*/0' is outside 0 to 59"),
    ],
)
def test_bad_crontabs_name_the_field(expression, error):
    with pytest.raises(ValueError) as caught:
        parse_cron(expression)
    assert error in str(caught.value)


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
        # Day of month or day of week, as cron has it: the 1st, or any Sunday.
        ("0 4 1 * 0", datetime(2026, 11, 29, 4, 0), datetime(2026, 11, 29, 4, 0)),
        ("30 2 * * *", datetime(2026, 11, 25, 4, 0), None),
    ],
)
def test_the_slot_of_a_run(expression, now, slot):
    assert slot_of(parse_cron(expression), now) == slot


def test_schedules_setting_becomes_beat_entries(monkeypatch):
    schedules = [
        {"name": "nightly", "cron": "30 2 * * 1-5", "manifest": "s3://bkt/nightly.jsonl"},
        {
            "name": "weekly",
            "cron": "0 4 * * 0",
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
    with pytest.raises(ConfigError, match="no schedule named 'daily'"):
        settings.batch_schedule("daily")


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ({"name": "n", "cron": "30 2 * *", "manifest": "m.jsonl"}, "has 4 fields"),
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
