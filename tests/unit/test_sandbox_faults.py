"""Prompt triggers decide outcomes deterministically; rates decide them at random."""

import random

import pytest

from sandbox.faults import (
    ALGO_FAILURE,
    OUTPUT_MODERATION_FAILURE,
    FaultRates,
    Outcome,
    plan_outcome,
    rejects_input,
)

NONE = FaultRates()


@pytest.mark.parametrize(
    ("prompt", "n", "expected"),
    [
        ("a red hat", 4, Outcome()),
        ("a red hat [sandbox:fail]", 1, Outcome(failure=ALGO_FAILURE)),
        ("[sandbox:output-fail] hat", 2, Outcome(failure=OUTPUT_MODERATION_FAILURE)),
        ("hat [sandbox:partial]", 3, Outcome(failed_images=frozenset({2}))),
        ("hat [sandbox:partial]", 1, Outcome()),
        ("hat [sandbox:expire]", 1, Outcome(expired=True)),
    ],
)
def test_prompt_triggers(prompt: str, n: int, expected: Outcome) -> None:
    assert plan_outcome(prompt, n, NONE, random.Random(0)) == expected


def test_moderation_trigger_and_rate() -> None:
    rng = random.Random(0)
    assert rejects_input("x [sandbox:moderation]", NONE, rng)
    assert not rejects_input("x", NONE, rng)
    assert rejects_input("x", FaultRates(moderation_rate=1.0), rng)


def test_random_partial_failures_never_fail_every_image() -> None:
    rng = random.Random(7)
    rates = FaultRates(partial_rate=1.0)
    for _ in range(200):
        outcome = plan_outcome("x", 4, rates, rng)
        assert 1 <= len(outcome.failed_images) <= 3
        assert outcome.failed_images <= {0, 1, 2, 3}


def test_rates_are_reproducible_with_a_seed() -> None:
    rates = FaultRates(fail_rate=0.5, partial_rate=0.5)

    def run(seed: int) -> list[Outcome]:
        rng = random.Random(seed)
        return [plan_outcome("x", 3, rates, rng) for _ in range(50)]

    assert run(3) == run(3)
    assert any(o.failure for o in run(3)) and any(not o.failure for o in run(3))


def test_rates_outside_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError):
        FaultRates(fail_rate=1.5)
