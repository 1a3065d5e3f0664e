"""Fault injection: random rates from the config, plus deterministic triggers in the prompt.

Prompt triggers, for tests (random faults from the rates apply on top of them):

- ``[sandbox:fail]``: the task ends FAILED with ``InternalError.Algo``.
- ``[sandbox:output-fail]``: the task ends FAILED with ``DataInspectionFailed``
  ("Output data may contain inappropriate content.").
- ``[sandbox:moderation]``: the create is answered 400 ``DataInspectionFailed``
  ("Input data may contain inappropriate content.").
- ``[sandbox:partial]``: the task SUCCEEDS with its last image failed (``n >= 2``; ignored when
  ``n == 1``), so ``usage.image_count == n - 1``.
- ``[sandbox:expire]``: every query of the task answers UNKNOWN, as if its 24 hours had passed.

A random partial failure fails between 1 and n-1 images, never all: the provider reports a task
SUCCEEDED only when at least one image succeeded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

from sandbox.errors import (
    ALGO_ERROR_MESSAGE,
    IMAGE_TIMEOUT_MESSAGE,
    OUTPUT_MODERATION_MESSAGE,
)

TRIGGER_FAIL = "[sandbox:fail]"
TRIGGER_OUTPUT_FAIL = "[sandbox:output-fail]"
TRIGGER_MODERATION = "[sandbox:moderation]"
TRIGGER_PARTIAL = "[sandbox:partial]"
TRIGGER_EXPIRE = "[sandbox:expire]"

ALGO_FAILURE = ("InternalError.Algo", ALGO_ERROR_MESSAGE)
OUTPUT_MODERATION_FAILURE = ("DataInspectionFailed", OUTPUT_MODERATION_MESSAGE)
# What a single failed image of a partly successful task carries.
IMAGE_FAILURE = ("InternalError.Timeout", IMAGE_TIMEOUT_MESSAGE)


@dataclass
class FaultRates:
    """Fractions of requests or tasks that go wrong at random; each in [0, 1]."""

    http_error_rate: float = 0.0
    fail_rate: float = 0.0
    moderation_rate: float = 0.0
    partial_rate: float = 0.0
    throttle_rate: float = 0.0  # requests answered 429 whatever the limits say (bursts: set to 1)
    lost_answer_rate: float = 0.0  # creates that make the task but answer too late to be heard

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be within [0, 1], got {value}")


@dataclass(frozen=True)
class Outcome:
    """How a task will end, decided when it is created."""

    failure: tuple[str, str] | None = None
    failed_images: frozenset[int] = frozenset()
    expired: bool = False


def draw(rng: random.Random, rate: float) -> bool:
    """True with probability ``rate``; draws nothing when the rate is 0 or 1."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    return rng.random() < rate


def rejects_input(prompt: str, rates: FaultRates, rng: random.Random) -> bool:
    """Whether input moderation refuses this create."""
    return TRIGGER_MODERATION in prompt or draw(rng, rates.moderation_rate)


def plan_outcome(prompt: str, n: int, rates: FaultRates, rng: random.Random) -> Outcome:
    """Decide at create time how a task with this prompt and ``n`` images ends."""
    expired = TRIGGER_EXPIRE in prompt
    if TRIGGER_OUTPUT_FAIL in prompt:
        return Outcome(failure=OUTPUT_MODERATION_FAILURE, expired=expired)
    if TRIGGER_FAIL in prompt or draw(rng, rates.fail_rate):
        return Outcome(failure=ALGO_FAILURE, expired=expired)
    failed: frozenset[int] = frozenset()
    if n >= 2 and TRIGGER_PARTIAL in prompt:
        failed = frozenset({n - 1})
    elif n >= 2 and draw(rng, rates.partial_rate):
        count = rng.randint(1, n - 1)
        failed = frozenset(rng.sample(range(n), count))
    return Outcome(failed_images=failed, expired=expired)
