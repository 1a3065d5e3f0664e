"""Validation of the create body, and the output size rules. Pure: no I/O.

Field limits follow the API reference: prompt up to 2000 characters and negative_prompt up to 500
(longer ones are silently truncated, as the real provider does), 1 to 3 images, n 1..4 (default 4),
size ``"W*H"`` with W*H in [768*768, 1280*1280] and aspect 1:4..4:1, seed 0..2147483647.
Unknown fields are ignored, as the provider ignores them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from wanedit.sandbox.errors import ApiError, invalid_parameter

MODEL = "wan2.5-i2i-preview"
PROMPT_MAX_CHARS = 2000
NEGATIVE_PROMPT_MAX_CHARS = 500
MAX_IMAGES = 3
MAX_N = 4
DEFAULT_N = 4
SEED_MAX = 2147483647
AREA_MIN = 768 * 768
AREA_MAX = 1280 * 1280
ASPECT_MAX = 4.0
SIZE_STEP = 16

_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*\*\s*(\d{1,5})\s*$")


@dataclass(frozen=True)
class EditRequest:
    """A validated create request; ``size`` is None until the last input image is known."""

    model: str
    prompt: str
    images: tuple[str, ...]
    n: int = DEFAULT_N
    size: tuple[int, int] | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    prompt_extend: bool = True
    watermark: bool = False


def decode_json(raw: bytes) -> Any:
    """A JSON request body, or a 400 InvalidParameter when it is not JSON."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise invalid_parameter("The request body is not valid JSON.") from None


def parse_create(body: Any) -> EditRequest:
    """Check a decoded JSON body; raise ApiError naming the first bad field."""
    if not isinstance(body, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    model = body.get("model")
    if model is None or model == "":
        raise invalid_parameter("model: required parameter is missing.")
    if model != MODEL:
        raise ApiError(404, "ModelNotFound", "Model not exist.")
    inputs = body.get("input")
    if not isinstance(inputs, dict):
        raise invalid_parameter("input: required object is missing.")
    params = body.get("parameters", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid_parameter("parameters: must be a JSON object.")
    size_text = _opt(params, "size", str)
    return EditRequest(
        model=model,
        prompt=_prompt(inputs.get("prompt")),
        images=_images(inputs.get("images")),
        n=_int_in(params, "n", 1, MAX_N, DEFAULT_N),
        size=None if size_text is None else parse_size(size_text),
        seed=_opt_int_in(params, "seed", 0, SEED_MAX),
        negative_prompt=_negative_prompt(inputs.get("negative_prompt")),
        prompt_extend=_bool(params, "prompt_extend", True),
        watermark=_bool(params, "watermark", False),
    )


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"W*H"`` and check its area and aspect ratio."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise invalid_parameter(f"parameters.size: {text!r} is not of the form 'width*height'.")
    width, height = int(match.group(1)), int(match.group(2))
    if width == 0 or height == 0:
        raise invalid_parameter(f"parameters.size: {text!r} has a zero side.")
    if not AREA_MIN <= width * height <= AREA_MAX:
        raise invalid_parameter(
            f"parameters.size: {width}*{height} has {width * height} px, outside the allowed "
            f"total of 768*768 to 1280*1280 ({AREA_MIN} to {AREA_MAX}) px."
        )
    if max(width / height, height / width) > ASPECT_MAX:
        raise invalid_parameter(
            f"parameters.size: {width}*{height} has an aspect ratio outside 1:4 to 4:1."
        )
    return width, height


def default_size(width: int, height: int) -> tuple[int, int]:
    """About 1280*1280 px at the aspect ratio of an input of ``width`` x ``height``.

    Sides are rounded down to multiples of 16 so the area never exceeds the maximum; a ratio
    beyond 4:1 is clamped to 4:1.
    """
    ratio = min(max(width / height, 1 / ASPECT_MAX), ASPECT_MAX)
    out_w = math.sqrt(AREA_MAX * ratio)
    out_h = out_w / ratio
    return _round_down(out_w), _round_down(out_h)


def _round_down(side: float) -> int:
    # The epsilon keeps 2560.0000001-style float noise from losing a whole step.
    return max(SIZE_STEP, int(side + 1e-6) // SIZE_STEP * SIZE_STEP)


def _prompt(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_parameter("input.prompt: required parameter is missing or empty.")
    return value[:PROMPT_MAX_CHARS]


def _negative_prompt(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_parameter("input.negative_prompt: must be a string.")
    return value[:NEGATIVE_PROMPT_MAX_CHARS]


def _images(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise invalid_parameter("input.images: required parameter is missing or empty.")
    if len(value) > MAX_IMAGES:
        raise invalid_parameter(
            f"input.images: {len(value)} images exceed the limit of {MAX_IMAGES}."
        )
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise invalid_parameter(f"input.images[{index}]: must be a non-empty string.")
    return tuple(value)


def _opt(params: dict[str, Any], name: str, kind: type) -> Any:
    value = params.get(name)
    if value is not None and not isinstance(value, kind):
        raise invalid_parameter(f"parameters.{name}: must be of type {kind.__name__}.")
    return value


def _opt_int_in(params: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    # bool is an int in Python but not in JSON's eyes.
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_parameter(f"parameters.{name}: must be an integer.")
    if not low <= value <= high:
        raise invalid_parameter(f"parameters.{name}: {value} is outside [{low}, {high}].")
    return value


def _int_in(params: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = _opt_int_in(params, name, low, high)
    return default if value is None else value


def _bool(params: dict[str, Any], name: str, default: bool) -> bool:
    value = _opt(params, name, bool)
    return default if value is None else bool(value)
