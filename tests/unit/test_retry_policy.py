"""The one retry policy: backoff, budget and deadline, as tables."""

from __future__ import annotations

import pytest

from wanedit.workers.policy.retry import RetryPolicy

POLICY = RetryPolicy(base=2, cap=60, budget=3)


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(0, 0.0, 1.0), (0, 1.0, 2.0), (1, 0.5, 3.0), (3, 0.0, 8.0), (10, 1.0, 60.0), (10, 0.0, 30.0)],
)
def test_backoff_has_equal_jitter_and_a_cap(attempt, rand, expected):
    assert POLICY.delay(attempt, lambda: rand) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("attempts", "limit", "spent"),
    [
        (0, None, False),
        (2, None, False),
        (3, None, True),
        (0, 1, False),
        (1, 1, True),
        (0, 0, True),
    ],
)
def test_the_budget_is_the_policy_s_unless_the_error_sets_one(attempts, limit, spent):
    assert POLICY.spent(attempts, limit) is spent


@pytest.mark.parametrize(
    ("attempt", "now", "expected"),
    [(0, 0.0, 2.0), (0, 98.0, 2.0), (0, 98.5, None), (5, 0.0, 60.0), (5, 50.0, None)],
)
def test_no_retry_starts_after_the_deadline(attempt, now, expected):
    assert POLICY.delay_before(attempt, now=now, deadline=100.0, rand=lambda: 1.0) == expected
