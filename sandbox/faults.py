"""Fault injection: random rates from the config, plus deterministic triggers in the prompt.

Prompt triggers, for tests (random faults from the rates apply on top of them):

- ``[sandbox:fail]``: the task ends FAILED with ``InternalError.Algo``.
- ``[sandbox:output-fail]``: the task ends FAILED with ``DataInspectionFailed``
  ("Output data may contain inappropriate content.").
- ``[sandbox:moderation]``: the create is answered 400 ``DataInspectionFailed``
  ("Input data may contain inappropriate content.") and makes no task.
- ``[sandbox:partial]``: the task SUCCEEDS with its last image failed with
  ``InternalError.Timeout`` (``n >= 2``; ignored when ``n == 1``), so
  ``usage.image_count == n - 1``.
- ``[sandbox:partial-moderation]``: the same, but the last image fails with
  ``DataInspectionFailed`` ("Output data may contain inappropriate content."). It wins over
  ``[sandbox:partial]`` when a prompt carries both.
- ``[sandbox:expire]``: every query of the task answers UNKNOWN, as if its 24 hours had passed;
  the task list shows it with status UNKNOWN (a sandbox choice: the docs do not say which tasks
  the list reports as UNKNOWN).
- ``[sandbox:lost-504]``, ``[sandbox:lost-drop]``, ``[sandbox:lost-500]``,
  ``[sandbox:lost-late]``: the create's answer is lost in that mode (see ``LOST_MODES``).

docs/dashscope.md: "A failed image inside a SUCCEEDED task can carry any per-image code:
``InternalError.Timeout`` and ``DataInspectionFailed`` are both documented." A random partial
failure fails between 1 and n-1 images, never all (the provider reports a task SUCCEEDED only
when at least one image succeeded), each drawing one of those two codes.

Lost create answers (docs/dashscope.md: "A create that times out or answers 5xx/504 may have made
the task: the answer was lost, not refused"): the task is made, runs and is listed with the create's
request_id, but the client gets no usable answer. The mode is the trigger's, else drawn uniformly
from ``lost_answer_modes`` for a fraction ``lost_answer_rate`` of the creates:

- ``504``: HTTP 504 with an HTML gateway page (no JSON, no request id), sent at once.
- ``drop``: the connection is closed after the request was read, with no HTTP answer at all.
- ``500``: HTTP 500 ``InternalError`` JSON whose request_id is the one in the task's list row.
- ``late``: the normal answer, held back ``lost_answer_delay`` seconds (past a client's timeout).

The injected ``http_error_rate`` 500 on a create is something else: a refusal, decided before
the body is read, that makes no task (the provider can refuse a create with a 500 too).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields

from wanedit.sandbox.errors import (
    ALGO_ERROR_MESSAGE,
    IMAGE_TIMEOUT_MESSAGE,
    OUTPUT_MODERATION_MESSAGE,
)

TRIGGER_FAIL = "[sandbox:fail]"
TRIGGER_OUTPUT_FAIL = "[sandbox:output-fail]"
TRIGGER_MODERATION = "[sandbox:moderation]"
TRIGGER_PARTIAL = "[sandbox:partial]"
TRIGGER_PARTIAL_MODERATION = "[sandbox:partial-moderation]"
TRIGGER_EXPIRE = "[sandbox:expire]"

LOST_504 = "504"
LOST_DROP = "drop"
LOST_500 = "500"
LOST_LATE = "late"
LOST_MODES = (LOST_504, LOST_DROP, LOST_500, LOST_LATE)
LOST_TRIGGERS = {f"[sandbox:lost-{mode}]": mode for mode in LOST_MODES}

ALGO_FAILURE = ("InternalError.Algo", ALGO_ERROR_MESSAGE)
OUTPUT_MODERATION_FAILURE = ("DataInspectionFailed", OUTPUT_MODERATION_MESSAGE)
# What a single failed image of a partly successful task carries: either documented code.
IMAGE_TIMEOUT = ("InternalError.Timeout", IMAGE_TIMEOUT_MESSAGE)
IMAGE_MODERATION = OUTPUT_MODERATION_FAILURE
IMAGE_FAILURES = (IMAGE_TIMEOUT, IMAGE_MODERATION)


@dataclass
class FaultRates:
    """Fractions of requests or tasks that go wrong at random; each in [0, 1]."""

    http_error_rate: float = 0.0
    fail_rate: float = 0.0
    moderation_rate: float = 0.0
    partial_rate: float = 0.0
    throttle_rate: float = 0.0  # requests answered 429 whatever the limits say (bursts: set to 1)
    lost_answer_rate: float = 0.0  # creates that make the task but whose answer is lost
    event_loss_rate: float = 0.0  # task-end events never sent (sandbox-only)
    event_dup_rate: float = 0.0  # task-end events sent twice with the same id (sandbox-only)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be within [0, 1], got {value}")


@dataclass(frozen=True)
class Outcome:
    """How a task will end, decided when it is created.

    ``failed_images`` maps the index of each failed image of a SUCCEEDED task to its
    ``(code, message)``.
    """

    failure: tuple[str, str] | None = None
    failed_images: dict[int, tuple[str, str]] = field(default_factory=dict)
    expired: bool = False


def draw(rng: random.Random, rate: float) -> bool:
    """True with probability ``rate``; draws nothing when the rate is 0 or 1."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    return rng.random() < rate


def check_lost_modes(modes: tuple[str, ...]) -> None:
    """Refuse an empty or unknown set of lost-answer modes."""
    unknown = [m for m in modes if m not in LOST_MODES]
    if not modes or unknown:
        raise ValueError(
            f"lost_answer_modes must be a non-empty subset of {', '.join(LOST_MODES)}, "
            f"got {', '.join(modes) or 'none'}"
        )


def rejects_input(prompt: str, rates: FaultRates, rng: random.Random) -> bool:
    """Whether input moderation refuses this create."""
    return TRIGGER_MODERATION in prompt or draw(rng, rates.moderation_rate)


def lost_answer(
    prompt: str, rates: FaultRates, modes: tuple[str, ...], rng: random.Random
) -> str | None:
    """How the answer of a create that made its task is lost, or None when it is not."""
    for trigger, mode in LOST_TRIGGERS.items():
        if trigger in prompt:
            return mode
    if not draw(rng, rates.lost_answer_rate):
        return None
    return modes[0] if len(modes) == 1 else rng.choice(modes)


def plan_outcome(prompt: str, n: int, rates: FaultRates, rng: random.Random) -> Outcome:
    """Decide at create time how a task with this prompt and ``n`` images ends."""
    expired = TRIGGER_EXPIRE in prompt
    if TRIGGER_OUTPUT_FAIL in prompt:
        return Outcome(failure=OUTPUT_MODERATION_FAILURE, expired=expired)
    if TRIGGER_FAIL in prompt or draw(rng, rates.fail_rate):
        return Outcome(failure=ALGO_FAILURE, expired=expired)
    failed: dict[int, tuple[str, str]] = {}
    if n >= 2 and TRIGGER_PARTIAL_MODERATION in prompt:
        failed = {n - 1: IMAGE_MODERATION}
    elif n >= 2 and TRIGGER_PARTIAL in prompt:
        failed = {n - 1: IMAGE_TIMEOUT}
    elif n >= 2 and draw(rng, rates.partial_rate):
        count = rng.randint(1, n - 1)
        failed = {i: rng.choice(IMAGE_FAILURES) for i in sorted(rng.sample(range(n), count))}
    return Outcome(failed_images=failed, expired=expired)
