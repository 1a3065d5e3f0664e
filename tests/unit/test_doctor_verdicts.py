"""What `wanedit doctor` makes of what it sees: tables."""

from __future__ import annotations

import pytest

from wanedit.accounts import Account
from wanedit.doctor import verdicts
from wanedit.doctor.cli import live_blockers
from wanedit.doctor.live import plan_for
from wanedit.doctor.report import Check, default_report_path


@pytest.mark.parametrize(
    ("aof", "save", "status"),
    [
        (True, "", "ok"),
        (True, None, "ok"),
        (False, "3600 1 300 100", "warn"),  # snapshots only: a crash loses minutes
        (False, None, "warn"),  # CONFIG refused (managed Redis): cannot tell
        (False, "", "fail"),  # nothing persisted
        (False, "  ", "fail"),
    ],
)
def test_redis_persistence(aof, save, status):
    check = verdicts.persistence(aof, save)
    assert check.status == status
    assert (check.fix == "") is (status == "ok")
    if status != "ok":
        assert "CONFIG SET appendonly yes" in check.fix


@pytest.mark.parametrize(
    ("policy", "status"),
    [
        ("noeviction", "ok"),
        ("volatile-lru", "warn"),
        ("volatile-ttl", "warn"),
        ("allkeys-lru", "fail"),
        ("allkeys-random", "fail"),
        ("unknown", "fail"),
    ],
)
def test_redis_eviction_policy(policy, status):
    check = verdicts.eviction(policy)
    assert check.status == status
    if status != "ok":
        assert check.fix.startswith("CONFIG SET maxmemory-policy noeviction")


NOW = 10_000.0


@pytest.mark.parametrize(
    ("times", "status", "words"),
    [
        ([], "fail", "no sweep has run"),
        ([NOW - 10, NOW - 40, NOW - 70], "ok", "ran 10 s ago"),
        ([NOW - 121], "fail", "121 s ago"),  # over 3 intervals + 30 s
        ([NOW - 119], "ok", "119 s ago"),
        ([NOW - 30 * i for i in range(7)], "ok", "ran 0 s ago"),  # 6 intervals: 7 sweeps at most
        ([NOW - 15 * i for i in range(13)], "warn", "more than one beat"),  # twice the schedule
    ],
)
def test_beat_is_judged_by_the_sweeps_it_sent(times, status, words):
    check = verdicts.beat(times, NOW, 30.0)
    assert (check.status, words in check.detail) == (status, True), check


@pytest.mark.parametrize(
    ("replies", "status", "words"),
    [
        (None, "fail", "no worker answered within 2 s"),
        ({}, "fail", "no worker answered"),
        ({"celery@a": ["wanedit"], "celery@b": ["wanedit", "other"]}, "ok", "2 consuming"),
        ({"celery@a": ["wanedit"], "celery@b": ["other"]}, "fail", "1 of 2 workers"),
        ({"celery@a": []}, "fail", "celery@a: none"),
    ],
)
def test_workers_must_consume_the_deployments_queue(replies, status, words):
    check = verdicts.queues(replies, "wanedit", 2.0)
    assert check.status == status and words in check.detail, check


@pytest.mark.parametrize(
    ("base_url", "other"),
    [
        ("https://dashscope.aliyuncs.com/api/v1", "https://dashscope-intl.aliyuncs.com/api/v1"),
        ("https://dashscope-intl.aliyuncs.com/api/v1", "https://dashscope.aliyuncs.com/api/v1"),
    ],
)
def test_a_refused_key_names_the_other_regions_endpoint(base_url, other):
    check = verdicts.key_refused("eu", base_url, "InvalidApiKey", "Invalid API-key provided.")
    assert check.status == "fail" and check.check == "provider key [eu]"
    assert other in check.fix and "InvalidApiKey" in check.detail
    assert verdicts.other_base_url(base_url) == other


def test_a_key_refused_by_another_host_names_both_regions():
    fix = verdicts.key_refused("a", "http://127.0.0.1:9/api/v1", "InvalidApiKey", "no").fix
    assert "dashscope-intl.aliyuncs.com" in fix and "//dashscope.aliyuncs.com" in fix


@pytest.mark.parametrize(
    ("measured", "configured", "stored", "status", "words"),
    [
        (8.0, None, None, "ok", "UTC+8"),
        (-5.5, None, 8.0, "ok", "UTC-5.5"),
        (0.0, 0.0, None, "ok", "as configured"),
        (0.0, 8.0, None, "fail", "8 h off"),
        (None, None, None, "warn", "UTC+8 (the documented Beijing time)"),
        (None, None, -5.5, "warn", "UTC-5.5, measured before"),
        (None, 9.0, None, "warn", "configured UTC+9"),
    ],
)
def test_the_zone_check(measured, configured, stored, status, words):
    check = verdicts.zone("a", measured, configured, "how", stored)
    assert check.status == status and words in check.detail, check


@pytest.mark.parametrize(
    ("skew", "uncertainty", "status"),
    [
        (0.4, 0.6, "ok"),
        (-5.5, 0.6, "ok"),
        (12.0, 0.6, "warn"),
        (-29.0, 0.6, "warn"),
        (31.0, 0.6, "fail"),  # beyond WANEDIT_RECONCILE_SKEW
        (None, 0.0, "warn"),
    ],
)
def test_the_clock_skew_check(skew, uncertainty, status):
    assert verdicts.clock_skew(skew, uncertainty, 30.0).status == status


@pytest.mark.parametrize(
    ("failed", "uploads", "blockers"),
    [
        (["redis persistence", "workers", "beat"], True, []),
        (["redis"], True, ["redis"]),
        (["output bucket"], True, ["output bucket"]),
        (["output bucket"], False, []),  # --image: the bucket is not needed
        (["provider key [eu]", "task list [eu]"], False, ["provider key [eu]"]),
    ],
)
def test_the_live_mode_needs_redis_the_keys_and_the_bucket(failed, uploads, blockers):
    found = [Check(name, "fail", "x", "y") for name in failed] + [Check("redis", "ok", "x")]
    assert live_blockers(found, uploads=uploads) == blockers


def test_the_live_plan_prices_each_accounts_images():
    beijing = Account(name="bj", base_url="https://dashscope.aliyuncs.com/api/v1", concurrency=5)
    singapore = Account(name="sg", concurrency=3)
    plan = plan_for([beijing, singapore], None)
    assert (plan.probe.name, plan.images(beijing), plan.images(singapore)) == ("bj", 7, 1)
    assert plan.cost() == {"CNY": round(7 * 0.20 + 0.220177, 6)}
    assert plan_for([beijing, singapore], "sg").images(singapore) == 5
    with pytest.raises(ValueError, match="--probe-account: 'x' is not one of bj, sg"):
        plan_for([beijing, singapore], "x")


def test_the_default_report_name_carries_the_utc_time():
    assert str(default_report_path(0.0)) == "wanedit-doctor-19700101T000000Z.json"


def test_a_check_prints_on_one_line_with_its_fix_below():
    assert Check("beat", "ok", "fine").line() == "ok   beat: fine"
    assert Check("beat", "fail", "none", "run one").line() == "FAIL beat: none\n       fix: run one"
