"""Prompt triggers decide outcomes deterministically; rates decide them at random."""

import random

import pytest

from wanedit.sandbox.faults import (
    ALGO_FAILURE,
    IMAGE_MODERATION,
    IMAGE_TIMEOUT,
    LOST_MODES,
    OUTPUT_MODERATION_FAILURE,
    FaultRates,
    Outcome,
    check_lost_modes,
    lost_answer,
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
        ("hat [sandbox:partial]", 3, Outcome(failed_images={2: IMAGE_TIMEOUT})),
        ("hat [sandbox:partial]", 1, Outcome()),
        ("hat [sandbox:partial-moderation]", 2, Outcome(failed_images={1: IMAGE_MODERATION})),
        ("hat [sandbox:partial-moderation]", 1, Outcome()),
        (
            "[sandbox:partial] [sandbox:partial-moderation]",
            4,
            Outcome(failed_images={3: IMAGE_MODERATION}),
        ),
        ("hat [sandbox:expire]", 1, Outcome(expired=True)),
    ],
)
def test_prompt_triggers(prompt: str, n: int, expected: Outcome) -> None:
    assert plan_outcome(prompt, n, NONE, random.Random(0)) == expected


def test_image_failure_codes_are_the_documented_ones() -> None:
    assert IMAGE_TIMEOUT[0] == "InternalError.Timeout"
    assert IMAGE_MODERATION == (
        "DataInspectionFailed",
        "Output data may contain inappropriate content.",
    )


def test_moderation_trigger_and_rate() -> None:
    rng = random.Random(0)
    assert rejects_input("x [sandbox:moderation]", NONE, rng)
    assert not rejects_input("x", NONE, rng)
    assert rejects_input("x", FaultRates(moderation_rate=1.0), rng)


def test_random_partial_failures_never_fail_every_image_and_draw_both_codes() -> None:
    rng = random.Random(7)
    rates = FaultRates(partial_rate=1.0)
    codes = set()
    for _ in range(200):
        outcome = plan_outcome("x", 4, rates, rng)
        assert 1 <= len(outcome.failed_images) <= 3
        assert set(outcome.failed_images) <= {0, 1, 2, 3}
        codes |= set(outcome.failed_images.values())
    assert codes == {IMAGE_TIMEOUT, IMAGE_MODERATION}


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


@pytest.mark.parametrize(
    ("prompt", "rate", "modes", "expected"),
    [
        ("x", 0.0, ("504", "drop"), None),
        ("x [sandbox:lost-504]", 0.0, ("drop",), "504"),
        ("x [sandbox:lost-drop]", 0.0, ("504",), "drop"),
        ("x [sandbox:lost-500]", 0.0, ("504",), "500"),
        ("x [sandbox:lost-late]", 0.0, ("504",), "late"),
        ("x", 1.0, ("late",), "late"),
        ("x", 1.0, ("500",), "500"),
    ],
)
def test_lost_answer_triggers_and_rate(
    prompt: str, rate: float, modes: tuple[str, ...], expected: str | None
) -> None:
    rates = FaultRates(lost_answer_rate=rate)
    assert lost_answer(prompt, rates, modes, random.Random(0)) == expected


def test_lost_answer_modes_are_drawn_uniformly() -> None:
    rng = random.Random(1)
    rates = FaultRates(lost_answer_rate=1.0)
    drawn = [lost_answer("x", rates, LOST_MODES, rng) for _ in range(4000)]
    for mode in LOST_MODES:
        assert 850 < drawn.count(mode) < 1150, (mode, drawn.count(mode))


@pytest.mark.parametrize("modes", [(), ("timeout",), ("504", "nope")])
def test_bad_lost_answer_modes_are_refused(modes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        check_lost_modes(modes)
