"""Each account's provider zone across worker processes, on a real Redis: measured, shared,
overridden by a configured zone, and a contradiction logged once per process and account."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest
import redis

from wanedit.store.keys import Keys
from wanedit.store.zones import ZoneStore
from wanedit.workers.policy.zone import ZoneChoice, ZoneSource
from wanedit.workers.zone import AccountZones

pytestmark = pytest.mark.integration
SENT = datetime(2026, 5, 28, 20, 47, 40, tzinfo=UTC).timestamp()
# SENT as a provider in UTC-5:30 writes it, 0.3 s later.
WEST = "2026-05-28 15:17:40.300"


@pytest.fixture
def store(redis_url: str) -> ZoneStore:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return ZoneStore(client, Keys(f"zones-{uuid.uuid4().hex[:8]}"))


def test_a_zone_measured_in_one_process_is_read_by_the_others(store):
    one = AccountZones(store, {"a": None, "b": None})
    assert one.choice("a") == ZoneChoice(8.0, ZoneSource.DEFAULT)
    assert one.learn("a", WEST, SENT, "create") == -5.5
    assert one.choice("a") == ZoneChoice(-5.5, ZoneSource.LEARNED)
    other = AccountZones(store, {"a": None, "b": None})
    assert other.offset("a") == -5.5 and other.offset("b") == 8.0  # per account
    measured = store.get("a")
    assert measured is not None and (measured.offset, measured.how) == (-5.5, "create")


def test_a_time_that_gives_no_zone_records_nothing(store):
    zones = AccountZones(store, {"a": None})
    assert zones.learn("a", "2026-05-28 15:23:40.000", SENT, "create") is None  # 6 min off
    assert zones.learn("a", "not a time", SENT, "create") is None
    assert store.get("a") is None and zones.offset("a") == 8.0


def test_a_configured_zone_wins_and_a_contradiction_is_logged_once(store, caplog):
    AccountZones(store, {"a": None}).learn("a", WEST, SENT, "create")
    zones = AccountZones(store, {"a": 0.0})
    with caplog.at_level(logging.WARNING, logger="wanedit.workers"):
        for _ in range(3):
            assert zones.choice("a") == ZoneChoice(0.0, ZoneSource.CONFIGURED)
            zones.learn("a", WEST, SENT, "create")
    lines = [r.getMessage() for r in caplog.records if "is configured" in r.getMessage()]
    assert lines == [
        "account a: the provider's times measure as UTC-5.5, but UTC+0 is configured "
        "(utc_offset / WANEDIT_PROVIDER_UTC_OFFSET); the configured zone is used"
    ]


def test_a_bad_record_reads_as_no_measurement(store):
    store.redis.hset(store.keys.provider_zone("a"), mapping={"offset": "15", "at": "1"})
    assert store.get("a") is None
    store.redis.hset(store.keys.provider_zone("a"), mapping={"offset": "x", "at": "1"})
    assert AccountZones(store, {"a": None}).offset("a") == 8.0
