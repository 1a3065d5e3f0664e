"""The provider's error codes, classified once: retry with backoff, or give up (workers, and a
batch's retry of its failed lines).

From docs/dashscope.md's table. Both channels carry the same codes: the flat body of an HTTP error
and `output.code` of a FAILED task.
"""

from __future__ import annotations

from dataclasses import dataclass

TERMINAL_CODES = frozenset(
    {
        "InvalidParameter",
        "InvalidParameter.DataInspection",
        "InvalidURL",
        "DataInspectionFailed",
        "IPInfringementSuspect",
        "Arrearage",
        "InvalidApiKey",
        "AccessDenied",
        "AccessDenied.Unpurchased",
        "Model.AccessDenied",
        "Workspace.AccessDenied",
        "AllocationQuota.FreeTierOnly",
        "ModelNotFound",
        "WorkSpaceNotFound",
        "NotFound",
        "CommodityNotPurchased",
        "PrepaidBillOverdue",
        "PostpaidBillOverdue",
        "UnsupportedOperation",
    }
)
THROTTLING_CODES = frozenset(
    {"Throttling", "Throttling.RateQuota", "Throttling.BurstRate", "Throttling.AllocationQuota"}
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeOut",
        "InternalError",
        "InternalError.Algo",
        "InternalError.Timeout",
        "InternalError.Upload",
        "SystemError",
        "ModelServiceFailed",
        "ModelUnavailable",
        "ModelServingError",
    }
)
MODERATION_CODES = frozenset({"DataInspectionFailed", "IPInfringementSuspect"})
# Codes that say the account cannot create at all (its key, region, bill, purchase or free
# quota), whatever the job: the account pauses and its jobs wait instead of failing one by one.
ACCOUNT_CODES = frozenset(
    {
        "InvalidApiKey",
        "Arrearage",
        "AccessDenied",
        "AccessDenied.Unpurchased",
        "Model.AccessDenied",
        "Workspace.AccessDenied",
        "WorkSpaceNotFound",
        "AllocationQuota.FreeTierOnly",
        "CommodityNotPurchased",
        "PrepaidBillOverdue",
        "PostpaidBillOverdue",
    }
)
# The one AccessDenied that is a request's fault, not the account's (a create sent without
# the X-DashScope-Async header).
SYNC_CALL_MESSAGE = "does not support synchronous calls"


@dataclass(frozen=True)
class Decision:
    """What to do about an error: retry or not, at most how often, and whether we were throttled."""

    retry: bool
    max_retries: int | None = None  # None: as often as the retry policy and deadline allow
    throttled: bool = False


TERMINAL = Decision(retry=False)
TRANSIENT = Decision(retry=True)
THROTTLED = Decision(retry=True, throttled=True)


def is_account_error(http_status: int | None, code: str, message: str = "") -> bool:
    """True when the error belongs to the account, not to the job: retrying the job, or
    trying the next one, would fail the same way until someone fixes the account."""
    lowered = message.lower()
    if code == "Throttling.AllocationQuota":
        return "free allocated quota exceeded" in lowered
    if code == "AccessDenied" and SYNC_CALL_MESSAGE in lowered:
        return False
    return code in ACCOUNT_CODES or http_status == 401


def classify(http_status: int | None, code: str, message: str = "") -> Decision:
    """Classify an error by its code first, then by its HTTP status for codes not in the table."""
    lowered = message.lower()
    if code == "Throttling.AllocationQuota" and "free allocated quota exceeded" in lowered:
        return TERMINAL
    if code in THROTTLING_CODES:
        return THROTTLED
    if code == "InvalidParameter" and "download the media resource timed out" in lowered:
        return Decision(retry=True, max_retries=1)
    if code in TERMINAL_CODES or code.startswith("BadRequest"):
        return TERMINAL
    if code in TRANSIENT_CODES:
        return TRANSIENT
    if http_status == 429:
        return THROTTLED
    if http_status is not None and (http_status >= 500 or http_status == 408):
        return TRANSIENT
    return TERMINAL
