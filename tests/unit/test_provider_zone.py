"""The provider's zone: measured to the quarter hour, and which one the workers use. Tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wanedit.provider_time import measured_offset
from wanedit.workers.policy.zone import ZoneChoice, ZoneSource, choose, disagrees

SENT = datetime(2026, 3, 1, 23, 50, 0, tzinfo=UTC).timestamp()


def written(hours: float, after: float = 0.0) -> str:
    """How a provider in UTC+hours writes the moment `after` s past SENT."""
    moment = datetime.fromtimestamp(SENT + after, UTC) + timedelta(hours=hours)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (written(8, 0.2), 8.0),  # Beijing, answered 0.2 s after the send (the next day there)
        (written(0, 0.05), 0.0),
        (written(-5.5, 1.5), -5.5),  # half-hour zones
        (written(5.75, 0.3), 5.75),  # Nepal's quarter hour
        (written(14, 0.1), 14.0),
        (written(-12, 0.1), -12.0),
        (written(8, 240), 8.0),  # 4 minutes of skew still reads as the zone
        (written(8, -240), 8.0),
        (written(8, 400), None),  # between two quarter hours: no zone
        (written(15, 0.1), None),  # beyond 14 hours
        (written(0, 0.05)[:19], 0.0),  # seconds only, as events write it
        ("2026-13-01 00:00:00.000", None),
        ("", None),
        (None, None),
        (1772409000, None),
    ],
)
def test_a_zone_is_measured_to_the_quarter_hour(text, expected):
    measured = measured_offset(text, SENT)
    assert measured == expected
    if measured is not None:
        assert str(measured) != "-0.0"


@pytest.mark.parametrize(
    ("configured", "learned", "expected"),
    [
        (None, None, ZoneChoice(8.0, ZoneSource.DEFAULT)),
        (None, -5.5, ZoneChoice(-5.5, ZoneSource.LEARNED)),
        (0.0, -5.5, ZoneChoice(0.0, ZoneSource.CONFIGURED)),  # configured wins, even 0
        (9.0, None, ZoneChoice(9.0, ZoneSource.CONFIGURED)),
        (8.0, 8.0, ZoneChoice(8.0, ZoneSource.CONFIGURED)),
    ],
)
def test_a_configured_zone_wins_then_the_measured_one_then_beijing(configured, learned, expected):
    assert choose(configured, learned) == expected


@pytest.mark.parametrize(
    ("configured", "learned", "expected"),
    [(None, 8.0, False), (8.0, None, False), (8.0, 8.0, False), (8.0, 0.0, True), (0.0, 8.0, True)],
)
def test_a_mismatch_is_a_configured_zone_the_answers_contradict(configured, learned, expected):
    assert disagrees(configured, learned) is expected
