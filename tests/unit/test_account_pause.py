"""Which provider errors pause an account, what an invalid key's message says, and how a pause
shows: the jobs' `waiting_for`, `wanedit top`, the quota table and the metric."""

from __future__ import annotations

import pytest

from wanedit.accounts import explain, region_of
from wanedit.metrics import AccountLoad, Snapshot
from wanedit.store.accounts import Pause, waiting_note
from wanedit.workers.policy.codes import classify, is_account_error

ACCOUNT_ERRORS = [
    # (http status, code, message): the account cannot create, whatever the job
    (401, "InvalidApiKey", "Invalid API-key provided."),
    (400, "Arrearage", "Access denied, please make sure your account is in good standing."),
    (403, "AccessDenied", "Access denied."),
    (403, "AccessDenied.Unpurchased", "Access to model denied."),
    (403, "Model.AccessDenied", ""),
    (403, "Workspace.AccessDenied", ""),
    (404, "WorkSpaceNotFound", ""),
    (403, "AllocationQuota.FreeTierOnly", "The free tier of the model has been exhausted."),
    (429, "Throttling.AllocationQuota", "Free allocated quota exceeded."),
    (429, "CommodityNotPurchased", ""),
    (429, "PrepaidBillOverdue", ""),
    (429, "PostpaidBillOverdue", ""),
    (401, "Unauthorized", "a 401 of any code: the key"),
]
JOB_ERRORS = [
    # the job's own fault, or a passing one: the account keeps serving
    (400, "InvalidParameter", "bad size"),
    (400, "InvalidURL", ""),
    (400, "DataInspectionFailed", ""),
    (400, "IPInfringementSuspect", ""),
    (404, "ModelNotFound", ""),
    (404, "NotFound", ""),
    (400, "UnsupportedOperation", ""),
    (403, "AccessDenied", "current user api does not support synchronous calls"),
    (429, "Throttling.AllocationQuota", "Requests throttling triggered."),
    (429, "Throttling.RateQuota", ""),
    (500, "InternalError", ""),
    (None, "ConnectionError", "refused"),
    (None, "OutcomeUnknown", "timed out"),
]


@pytest.mark.parametrize(("status", "code", "message"), ACCOUNT_ERRORS)
def test_account_errors_pause_the_account(status, code, message):
    assert is_account_error(status, code, message)
    assert classify(status, code, message).retry is False  # never retried job by job


@pytest.mark.parametrize(("status", "code", "message"), JOB_ERRORS)
def test_other_errors_are_the_jobs(status, code, message):
    assert not is_account_error(status, code, message)


@pytest.mark.parametrize(
    ("base_url", "region"),
    [
        ("https://dashscope.aliyuncs.com/api/v1", "Beijing (cn-beijing), dashscope.aliyuncs.com"),
        (
            "https://dashscope-intl.aliyuncs.com/api/v1",
            "Singapore (ap-southeast-1), dashscope-intl.aliyuncs.com",
        ),
        ("http://127.0.0.1:8300/api/v1", "host 127.0.0.1"),
    ],
)
def test_an_invalid_key_names_the_region_of_its_endpoint(base_url, region):
    assert region_of(base_url) == region
    text = explain("InvalidApiKey", "Invalid API-key provided.", base_url)
    assert text.startswith("Invalid API-key provided. The key was refused by the " + region)
    assert "keys and endpoints of Beijing and Singapore do not mix" in text


def test_other_codes_keep_the_providers_message():
    assert explain("Arrearage", "unpaid", "https://dashscope.aliyuncs.com/api/v1") == "unpaid"


BAD = Pause("InvalidApiKey", "Invalid API-key provided.", 1.0)
UNPAID = Pause("Arrearage", "unpaid", 2.0)


@pytest.mark.parametrize(
    ("pauses", "note"),
    [
        ({}, None),
        ({"bad": BAD}, None),  # another account serves: the job waits for a slot
        ({"bad": BAD, "good": UNPAID},
         "account_paused: InvalidApiKey: Invalid API-key provided. (bad); "
         "account_paused: Arrearage: unpaid (good)"),
    ],
)  # fmt: skip
def test_jobs_wait_for_a_paused_account_only_when_none_serves(pauses, note):
    assert waiting_note(pauses, ["bad", "good"]) == note


def test_a_single_paused_account_is_what_its_jobs_wait_for():
    assert waiting_note({"default": BAD}, ["default"]) == (
        "account_paused: InvalidApiKey: Invalid API-key provided. (default)"
    )


def test_top_and_the_metric_show_a_paused_account():
    from wanedit.producers.cli.top import render
    from wanedit.workers.metrics import families

    snap = Snapshot(accounts=[AccountLoad("good", 1, 5), AccountLoad("bad", 0, 5, "Arrearage")])
    lines = render(snap, 0.0).splitlines()
    assert "account          in flight  free  state" in lines
    assert "good                   1/5     4  serving" in lines
    assert "bad                    0/5     0  PAUSED Arrearage" in lines
    gauges = {family.name: family for family in families(snap)}
    paused = {s.labels["account"]: s.value for s in gauges["wanedit_account_paused"].samples}
    assert paused == {"good": 0, "bad": 1}
    free = {s.labels["account"]: s.value for s in gauges["wanedit_free_slots"].samples}
    assert free == {"good": 4, "bad": 0}


def test_the_quota_table_says_which_account_is_paused():
    from wanedit.producers.cli.ops import quota_table
    from wanedit.producers.cli.top import plain

    row = {
        "in_flight": 0, "concurrency": 5, "submit_rate": 5.0, "query_rate": 20.0,
        "images_today": 0, "cost_today": 0.0, "currency": "CNY",
    }  # fmt: skip
    data = {"accounts": [{**row, "name": "good", "paused": None},
                         {**row, "name": "bad", "paused": UNPAID.as_dict()}]}  # fmt: skip
    lines = plain(quota_table(data)).splitlines()
    assert lines[0].split()[-1] == "state"
    assert lines[1].split()[-1] == "serving"
    assert lines[2].split()[-1] == "paused"
