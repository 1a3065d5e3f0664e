"""What a job's end adds to the cluster-wide counters, and reading the counters back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from wanedit.metrics import (
    COMPLETION_LAG_BUCKETS,
    POLLS_BUCKETS,
    TASK_DURATION_BUCKETS,
    bucket_of,
    counters_from,
    field_name,
    histograms_from,
    observe,
    parse_field,
    provider_moment,
    terminal_increments,
)

END = provider_moment("2026-11-25 00:00:40.000", 8.0)  # Beijing time, as the provider writes
assert END is not None


def job(**fields: Any) -> Any:
    base = {
        "account": "sg",
        "error": None,
        "outputs": [],
        "usage": None,
        "provider_task_id": None,
        "provider_status": None,
        "provider_times": None,
        "polls": 0,
    }
    return SimpleNamespace(**{**base, **fields})


@pytest.mark.parametrize(
    ("value", "bounds", "expected"),
    [
        (0.0, TASK_DURATION_BUCKETS, "1.0"),
        (1.0, TASK_DURATION_BUCKETS, "1.0"),  # the bound itself is inside its bucket
        (1.01, TASK_DURATION_BUCKETS, "2.0"),
        (4.2, TASK_DURATION_BUCKETS, "5.0"),  # a sandbox task
        (6.0, TASK_DURATION_BUCKETS, "7.5"),
        (37.0, TASK_DURATION_BUCKETS, "45.0"),  # a real task
        (118.0, TASK_DURATION_BUCKETS, "120.0"),
        (601.0, TASK_DURATION_BUCKETS, "+Inf"),
        (0.1, COMPLETION_LAG_BUCKETS, "0.25"),
        (2.5, COMPLETION_LAG_BUCKETS, "3.0"),
        (3, POLLS_BUCKETS, "3.0"),
        (6, POLLS_BUCKETS, "7.0"),
        (500, POLLS_BUCKETS, "+Inf"),
    ],
)
def test_a_value_falls_in_the_smallest_bucket_that_holds_it(value, bounds, expected):
    assert bucket_of(value, bounds) == expected


@pytest.mark.parametrize(
    ("name", "labels", "text"),
    [
        ("images_stored_total", {}, "images_stored_total"),
        ("jobs_total", {"status": "failed"}, "jobs_total|status=failed"),
        ("cost_total", {"currency": "CNY", "account": "sg"}, "cost_total|account=sg|currency=CNY"),
        ("provider_errors_total", {"code": "Throttling.RateQuota"}, None),
        # A provider's code is untrusted: no separators, no spaces, at most 64 characters.
        ("provider_errors_total", {"code": "a|b=c d"}, "provider_errors_total|code=a_b_c_d"),
        ("provider_errors_total", {"code": "X" * 100}, "provider_errors_total|code=" + "X" * 64),
    ],
)
def test_counter_fields_round_trip(name, labels, text):
    encoded = field_name(name, **labels)
    if text is not None:
        assert encoded == text
    parsed_name, parsed_labels = parse_field(encoded)
    assert parsed_name == name
    assert {key for key, _ in parsed_labels} == set(labels)


def test_succeeded_job_counts_status_images_cost_polls_duration_and_lag():
    ended = job(
        provider_task_id="t-1",
        polls=2,
        usage={"image_count": 2, "cost": 0.440354, "currency": "CNY"},
        provider_times={
            "submit_time": "2026-11-25 00:00:00.000",
            "scheduled_time": "2026-11-25 00:00:02.000",
            "end_time": "2026-11-25 00:00:40.000",
        },
    )
    outputs = [{"index": 0, "uri": "s3://b/p/0.png"}, {"index": 1, "error": {"code": "X"}}]
    got = terminal_increments(ended, "succeeded", {"outputs": outputs}, now=END + 1.5)
    assert got == {
        "jobs_total|status=succeeded": 1,
        "images_stored_total": 1,
        "images_billed_total|account=sg": 2,
        "cost_total|account=sg|currency=CNY": 0.440354,
        "polls_per_job|le=2.0": 1,
        "polls_per_job_sum": 2,
        "polls_per_job_count": 1,
        "task_duration_seconds|le=45.0": 1,
        "task_duration_seconds_sum": 38.0,
        "task_duration_seconds_count": 1,
        "completion_lag_seconds|le=2.0": 1,
        "completion_lag_seconds_sum": 1.5,
        "completion_lag_seconds_count": 1,
    }


@pytest.mark.parametrize(
    ("fields", "status", "changes", "expected"),
    [
        # Refused at create: no provider task, so no polls, durations or provider-side error.
        (
            {},
            "failed",
            {"error": {"code": "DataInspectionFailed", "message": "m"}},
            {"jobs_total|status=failed": 1, "job_errors_total|code=DataInspectionFailed": 1},
        ),
        # The provider ended the task FAILED: its code is a provider error too.
        (
            {"provider_task_id": "t", "polls": 3},
            "failed",
            {
                "error": {"code": "InternalError.Algo", "message": "m"},
                "provider_status": "FAILED",
                "polls": 4,
            },
            {
                "jobs_total|status=failed": 1,
                "job_errors_total|code=InternalError.Algo": 1,
                "provider_errors_total|code=InternalError.Algo": 1,
                "polls_per_job|le=4.0": 1,
                "polls_per_job_sum": 4,
                "polls_per_job_count": 1,
            },
        ),
        # Our own failure while the provider's task had not ended: not the provider's error.
        (
            {"provider_task_id": "t", "polls": 1, "provider_status": "RUNNING"},
            "failed",
            {"error": {"code": "WorkerLost", "message": "m"}},
            {
                "jobs_total|status=failed": 1,
                "job_errors_total|code=WorkerLost": 1,
                "polls_per_job|le=1.0": 1,
                "polls_per_job_sum": 1,
                "polls_per_job_count": 1,
            },
        ),
        # Canceled while queued.
        ({}, "canceled", {"error": {"code": "Canceled"}}, {"jobs_total|status=canceled": 1}),
    ],
)
def test_what_other_ends_count(fields, status, changes, expected):
    assert terminal_increments(job(**fields), status, changes, now=0.0) == expected


def test_provider_times_use_the_offset_and_a_lag_is_never_negative():
    assert provider_moment("2026-11-25 08:00:00.000", 8) == provider_moment(
        "2026-11-25 00:00:00.000", 0
    )
    assert provider_moment("2026-11-25 08:00:00") == provider_moment("2026-11-25 00:00:00.000", 0)
    assert provider_moment("not a time") is None
    assert provider_moment(None) is None
    ended = job(provider_times={"end_time": "2026-11-25 00:00:40.000"})
    got = terminal_increments(ended, "succeeded", {}, now=END - 3)  # our clock is behind
    assert got["completion_lag_seconds_sum"] == 0.0
    assert "task_duration_seconds_count" not in got  # no scheduled_time: no duration


def test_a_record_says_which_zone_its_provider_times_are_in():
    # An account whose provider writes UTC: the same strings end 8 h later than Beijing time.
    times = {"end_time": "2026-11-25 00:00:40.000", "utc_offset": 0}
    got = terminal_increments(job(provider_times=times), "succeeded", {}, now=END + 8 * 3600 + 2)
    assert got["completion_lag_seconds_sum"] == 2.0
    # without it, the store's default zone (Beijing) applies
    got = terminal_increments(
        job(provider_times={"end_time": "2026-11-25 00:00:40.000"}), "succeeded", {}, now=END + 2
    )
    assert got["completion_lag_seconds_sum"] == 2.0


def test_counters_and_cumulative_histograms_are_read_back():
    raw: dict[str, float] = {"jobs_total|status=succeeded": 3, "images_stored_total": 5}
    for value in (1.5, 4.0, 4.5, 200.0):
        for name, amount in observe("task_duration_seconds", value).items():
            raw[name] = raw.get(name, 0) + amount
    text = {name: str(value) for name, value in raw.items()}
    counters = counters_from(text)
    assert counters == {
        "jobs_total": {(("status", "succeeded"),): 3.0},
        "images_stored_total": {(): 5.0},
    }
    histogram = histograms_from(text)["task_duration_seconds"]
    cumulative = dict(histogram.buckets)
    assert cumulative["1.0"] == 0
    assert cumulative["2.0"] == 1
    assert cumulative["5.0"] == 3
    assert cumulative["180.0"] == 3
    assert cumulative["300.0"] == cumulative["+Inf"] == 4
    assert list(cumulative)[-1] == "+Inf"
    assert (histogram.count, histogram.sum) == (4, 210.0)
    assert histogram.quantile_bound(0.5) == "5.0"
    assert histogram.quantile_bound(0.9) == "300.0"
    empty = histograms_from({})["polls_per_job"]
    assert empty.count == 0 and empty.quantile_bound(0.5) is None and empty.mean is None
