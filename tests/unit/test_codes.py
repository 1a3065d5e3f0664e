"""Every provider code from docs/dashscope.md's table, classified in one place."""

from __future__ import annotations

import pytest

from wanedit.workers.policy.codes import classify

CASES = [
    # (http status, code, message, retry, throttled, max_retries)
    (400, "InvalidParameter", "bad size", False, False, None),
    (400, "InvalidParameter", "Download the media resource timed out", True, False, 1),
    (400, "InvalidParameter.DataInspection", "", False, False, None),
    (400, "BadRequest.TooLarge", "", False, False, None),
    (400, "InvalidURL", "", False, False, None),
    (400, "DataInspectionFailed", "", False, False, None),
    (400, "IPInfringementSuspect", "", False, False, None),
    (400, "Arrearage", "", False, False, None),
    (401, "InvalidApiKey", "", False, False, None),
    (403, "AccessDenied", "", False, False, None),
    (403, "AccessDenied.Unpurchased", "", False, False, None),
    (403, "Model.AccessDenied", "", False, False, None),
    (403, "Workspace.AccessDenied", "", False, False, None),
    (403, "AllocationQuota.FreeTierOnly", "", False, False, None),
    (404, "ModelNotFound", "", False, False, None),
    (404, "WorkSpaceNotFound", "", False, False, None),
    (404, "NotFound", "", False, False, None),
    (408, "RequestTimeOut", "", True, False, None),
    (500, "RequestTimeOut", "", True, False, None),
    (429, "Throttling", "", True, True, None),
    (429, "Throttling.RateQuota", "", True, True, None),
    (429, "Throttling.BurstRate", "", True, True, None),
    (429, "Throttling.AllocationQuota", "quota exceeded", True, True, None),
    (429, "Throttling.AllocationQuota", "Free allocated quota exceeded.", False, False, None),
    (429, "CommodityNotPurchased", "", False, False, None),
    (429, "PrepaidBillOverdue", "", False, False, None),
    (429, "PostpaidBillOverdue", "", False, False, None),
    (500, "InternalError", "", True, False, None),
    (500, "InternalError.Algo", "", True, False, None),
    (500, "SystemError", "", True, False, None),
    (500, "ModelServiceFailed", "", True, False, None),
    (500, "InternalError.Timeout", "", True, False, None),
    (500, "InternalError.Upload", "", True, False, None),
    (503, "ModelUnavailable", "", True, False, None),
    (504, "ModelServingError", "", True, False, None),
    # Codes not in the table fall back on the HTTP status.
    (502, "Unknown", "HTML page", True, False, None),
    (503, "Unknown", "", True, False, None),
    (429, "SomethingNew", "", True, True, None),
    (400, "SomethingNew", "", False, False, None),
    (None, "SomethingNew", "", False, False, None),
]


@pytest.mark.parametrize(("status", "code", "message", "retry", "throttled", "limit"), CASES)
def test_classification(status, code, message, retry, throttled, limit):
    decision = classify(status, code, message)
    assert (decision.retry, decision.throttled, decision.max_retries) == (retry, throttled, limit)
