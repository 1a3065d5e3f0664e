"""Token buckets with a fake clock: one second of burst, then the steady rate."""

import pytest

from wanedit.sandbox.limits import TokenBucket


def takes(bucket: TokenBucket, times: list[float]) -> list[bool]:
    return [bucket.take(t) for t in times]


@pytest.mark.parametrize(
    ("rate", "times", "expected"),
    [
        # A full bucket allows `rate` requests in the same instant, then refuses.
        (5.0, [0.0] * 6, [True] * 5 + [False]),
        # Refills at `rate` per second: one more token every 0.2 s.
        (5.0, [0.0] * 5 + [0.1, 0.2, 0.2], [True] * 5 + [False, True, False]),
        # Never more than one second's worth, however long the pause.
        (5.0, [0.0] * 5 + [100.0] * 6, [True] * 5 + [True] * 5 + [False]),
        # Exactly at the rate is always allowed.
        (20.0, [i * 0.05 for i in range(100)], [True] * 100),
        # A rate below one a second still allows one request.
        (0.5, [0.0, 0.0, 1.0, 2.0], [True, False, False, True]),
    ],
)
def test_bucket_allows_the_rate_and_one_second_of_burst(
    rate: float, times: list[float], expected: list[bool]
) -> None:
    assert takes(TokenBucket.per_second(rate), times) == expected


def test_time_going_backwards_does_not_mint_tokens() -> None:
    bucket = TokenBucket.per_second(1.0)
    assert takes(bucket, [10.0, 9.0, 9.5, 10.0]) == [True, False, False, False]


def test_bucket_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0.0, capacity=1.0)
