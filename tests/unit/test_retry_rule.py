"""Which failed lines `wanedit batch-retry` sends again by default, and with --all."""

from __future__ import annotations

import pytest

from wanedit.intake.retry_rule import Verdict, failure_can_change, verdict

DOWNLOAD = "Download the media resource timed out during the data inspection process."


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        # The provider's code table: transient and throttling codes may change.
        ("InternalError", "", True),
        ("InternalError.Algo", "", True),
        ("InternalError.Timeout", "", True),
        ("RequestTimeOut", "", True),
        ("SystemError", "", True),
        ("Throttling", "", True),
        ("Throttling.RateQuota", "", True),
        ("Throttling.AllocationQuota", "", True),
        ("Throttling.AllocationQuota", "Free allocated quota exceeded.", False),
        # An input the provider could not download in time: it may be there now.
        ("InvalidParameter", DOWNLOAD, True),
        # Moderation: of the output, a new image may pass; of the input, never.
        ("DataInspectionFailed", "Output data may contain inappropriate content.", True),
        ("DataInspectionFailed", "Input data may contain inappropriate content.", False),
        # Requests the provider refuses fail the same way again.
        ("InvalidParameter", "size: 100*100 is too small", False),
        ("InvalidURL", "", False),
        ("IPInfringementSuspect", "", False),
        ("Arrearage", "", False),
        ("InvalidApiKey", "", False),
        ("BadRequest.TooLarge", "", False),
        # wanedit's own failures that are no fault of the request.
        ("WorkerLost", "", True),
        ("CreateOutcomeUnknown", "", True),
        ("DownloadFailed", "", True),
        ("ResultExpired", "", True),
        ("PollDeadlineExceeded", "", True),
        ("StorageUnavailable", "", True),
        ("BackendUnavailable", "", True),
        # ... and those that are.
        ("InputUnavailable", "images[0]: s3://b/k does not exist", False),
        ("InvalidRequest", "n: 9 is outside 1 to 4 images", False),
        ("NotAllowed", "", False),
        ("Duplicate", "", False),
        ("SomethingNew", "", False),
    ],
)
def test_which_failures_a_retry_can_change(code: str, message: str, expected: bool) -> None:
    assert failure_can_change(code, message) is expected


def error(code: str, message: str = "m") -> dict[str, str]:
    return {"code": code, "message": message}


@pytest.mark.parametrize(
    ("status", "err", "all_failed", "expected"),
    [
        ("succeeded", None, False, Verdict(False, "succeeded")),
        ("succeeded", None, True, Verdict(False, "succeeded")),
        ("queued", None, True, Verdict(False, "not ended")),
        ("submitted", None, False, Verdict(False, "not ended")),
        ("running", None, True, Verdict(False, "not ended")),
        (None, None, True, Verdict(False, "job record expired")),
        ("failed", error("InternalError.Algo"), False, Verdict(True)),
        ("failed", error("WorkerLost"), False, Verdict(True)),
        (
            "failed",
            error("InvalidParameter"),
            False,
            Verdict(False, "InvalidParameter fails again (use --all)"),
        ),
        ("failed", error("InvalidParameter"), True, Verdict(True)),
        ("failed", None, False, Verdict(False, "unknown fails again (use --all)")),
        ("failed", None, True, Verdict(True)),
        ("canceled", error("Canceled"), False, Verdict(False, "canceled (use --all)")),
        ("canceled", error("Canceled"), True, Verdict(True)),
    ],
)
def test_what_batch_retry_does_with_a_line(status, err, all_failed, expected) -> None:
    assert verdict(status, err, all_failed=all_failed) == expected


def test_the_batches_page_names_every_code_a_retry_sends_again() -> None:
    from pathlib import Path

    from wanedit.intake.retry_rule import WANEDIT_TRANSIENT_CODES

    page = (Path(__file__).parents[2] / "docs" / "batches.md").read_text()
    section = page.split("Which failed lines `batch-retry` sends again", 1)[1].split("Left", 1)[0]
    named = {code for code in WANEDIT_TRANSIENT_CODES if f"`{code}`" in section}
    assert named == WANEDIT_TRANSIENT_CODES
