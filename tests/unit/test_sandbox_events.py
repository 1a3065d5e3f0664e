"""The task-end event's pure parts: times, fates, retries, redaction and checks."""

from __future__ import annotations

import random
from datetime import timedelta, timezone

import pytest

from wanedit.sandbox.events import (
    EventTarget,
    beijing_seconds,
    plan,
    redact_url,
    retry_pause,
    utc_iso,
)

BEIJING = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("unix", "beijing", "utc"),
    [
        (1761207549.0, "2025-10-23 16:19:09", "2025-10-23T08:19:09.000Z"),
        (1761207549.6874, "2025-10-23 16:19:09", "2025-10-23T08:19:09.687Z"),
        (1761235199.9996, "2025-10-24 00:00:00", "2025-10-23T16:00:00.000Z"),
        (0.0, "1970-01-01 08:00:00", "1970-01-01T00:00:00.000Z"),
    ],
)
def test_times(unix: float, beijing: str, utc: str) -> None:
    assert beijing_seconds(unix, BEIJING) == beijing
    assert utc_iso(unix) == utc


@pytest.mark.parametrize(
    ("loss", "dup", "copies"),
    [(0.0, 0.0, 1), (1.0, 0.0, 0), (0.0, 1.0, 2), (1.0, 1.0, 0)],
)
def test_plan_copies(loss: float, dup: float, copies: int) -> None:
    rng = random.Random(1)
    drawn = plan(rng, EventTarget("http://r/e", delay=2.0), loss, dup)
    assert (drawn.wait, drawn.copies) == (2.0, copies)
    # Rates of 0 and 1 and no jitter draw nothing: other seeded faults are unchanged.
    assert rng.random() == random.Random(1).random()


def test_plan_jitter_is_within_its_bound_and_seeded() -> None:
    target = EventTarget("http://r/e", delay=1.0, jitter=0.5)
    waits = [plan(random.Random(seed), target, 0.0, 0.0).wait for seed in range(50)]
    assert all(1.0 <= w <= 1.5 for w in waits) and len(set(waits)) > 1
    assert waits[7] == plan(random.Random(7), target, 0.0, 0.0).wait


@pytest.mark.parametrize(("attempt", "pause"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, None), (0, None)])
def test_retry_pause(attempt: int, pause: float | None) -> None:
    assert retry_pause(attempt) == pause


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (None, None),
        ("http://h:1/e", "http://h:1/e"),
        ("https://h/e?token=s3cret&x=1", "https://h/e?token=%2A%2A%2A&x=%2A%2A%2A"),
        ("http://user:pw@h/e", "http://h/e"),
    ],
)
def test_redact_url(url: str | None, shown: str | None) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "ftp://h/e"}, "event_url"),
        ({"url": "http:///nohost"}, "event_url"),
        ({"headers": {"": "x"}}, "event_headers"),
        ({"headers": {"A": 1}}, "event_headers"),
        ({"delay": -0.1}, "event_delay"),
        ({"jitter": True}, "event_jitter"),
    ],
)
def test_bad_targets_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        EventTarget(**kwargs)  # type: ignore[arg-type]


def test_a_bad_url_is_shown_without_its_token() -> None:
    with pytest.raises(ValueError) as raised:
        EventTarget("ftp://h/e?token=s3cret")
    assert "s3cret" not in str(raised.value)
