"""Which of a batch's lines `wanedit batch-retry` sends again, and why the others are left. Pure.

A line is sent again by default when its latest attempt failed in a way a new attempt can change:
what the provider's code table retries (`wanedit.provider_codes.classify`: internal errors,
throttling, timeouts, a download of the input that timed out), the output refused by moderation
(a new attempt draws a new image), and wanedit's own failures that are no fault of the request
(a worker lost, a create whose outcome stayed unknown, a result that could not be downloaded or
stored). A request the provider or wanedit refused (bad parameters, an input it cannot read,
input moderation, an account problem) fails the same way again: only `--all` sends it again.
A canceled line is sent again only with `--all`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wanedit.provider_codes import classify

# wanedit's own failure codes that say nothing about the request: a new attempt may succeed.
WANEDIT_TRANSIENT_CODES = frozenset(
    {
        "WorkerLost",
        "CreateOutcomeUnknown",
        "OutcomeUnknown",
        "DownloadFailed",
        "ResultExpired",
        "NoResult",
        "InvalidResult",
        "PollDeadlineExceeded",
        "TaskUnknown",
        "StorageError",
        "StorageUnavailable",
        "BackendUnavailable",
        "JobRecordLost",
        "ConnectionError",
        "ListIncomplete",
    }
)
OUTPUT_MODERATION = "output data"  # in the message of a DataInspectionFailed about the result


@dataclass(frozen=True)
class Verdict:
    """Whether a line is sent again, and when not, why (shown to the user, counted by reason)."""

    resend: bool
    reason: str = ""


def failure_can_change(code: str, message: str = "") -> bool:
    """Whether a job that failed with `code` and `message` may succeed when sent again."""
    if code in WANEDIT_TRANSIENT_CODES:
        return True
    if code == "DataInspectionFailed" and OUTPUT_MODERATION in message.lower():
        return True
    return classify(None, code, message).retry


def verdict(
    status: str | None, error: dict[str, Any] | None, *, all_failed: bool = False
) -> Verdict:
    """What `batch-retry` does with a line whose latest attempt has `status` (None: its job
    record has expired) and `error`."""
    if status is None:
        return Verdict(False, "job record expired")
    if status == "succeeded":
        return Verdict(False, "succeeded")
    if status in ("queued", "submitted", "running"):
        return Verdict(False, "not ended")
    if status == "canceled":
        return Verdict(True) if all_failed else Verdict(False, "canceled (use --all)")
    code = str((error or {}).get("code") or "unknown")
    if all_failed or failure_can_change(code, str((error or {}).get("message") or "")):
        return Verdict(True)
    return Verdict(False, f"{code} fails again (use --all)")
