"""The listeners' retry policy: outages are waited out with backoff, other errors end them."""

from __future__ import annotations

import pytest

from wanedit.errors import BackendUnavailable, InvalidEvent
from wanedit.producers.listen import OUTAGE_WAIT_MAX, outages


def flaky(failures: int, error: Exception):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "done"

    return call, calls


@pytest.mark.parametrize(
    ("failures", "waits"),
    [
        (0, []),
        (1, [1.0]),
        (4, [1.0, 2.0, 4.0, 8.0]),
        # Long outages: never more than OUTAGE_WAIT_MAX between two tries.
        (9, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]),
    ],
)
def test_an_outage_is_waited_out_with_backoff(failures, waits):
    slept: list[float] = []
    call, calls = flaky(failures, BackendUnavailable("Redis cannot be reached: down"))
    assert outages(once=False, sleep=slept.append)(call) == "done"
    assert slept == waits
    assert len(calls) == failures + 1
    assert max(slept, default=0) <= OUTAGE_WAIT_MAX


def test_once_gives_up_at_the_first_outage():
    slept: list[float] = []
    call, calls = flaky(1, BackendUnavailable("S3 cannot be reached"))
    with pytest.raises(BackendUnavailable, match="S3 cannot be reached"):
        outages(once=True, sleep=slept.append)(call)
    assert (slept, len(calls)) == ([], 1)


def test_other_errors_are_not_retried():
    slept: list[float] = []
    call, calls = flaky(1, InvalidEvent("body: not JSON"))
    with pytest.raises(InvalidEvent):
        outages(once=False, sleep=slept.append)(call)
    assert (slept, len(calls)) == ([], 1)
