"""Create-body validation and the output size rules."""

from typing import Any

import pytest

from wanedit.sandbox.errors import ApiError
from wanedit.sandbox.params import (
    NEGATIVE_PROMPT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    default_size,
    parse_create,
    parse_size,
)

IMG = "https://example.com/a.jpg"


def body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": "wan2.5-i2i-preview",
        "input": {"prompt": "make it blue", "images": [IMG]},
        "parameters": {"n": 1, "size": "1024*1024"},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if value is None:
            data[section].pop(field, None)
        else:
            data[section][field] = value
    return data


def test_defaults() -> None:
    request = parse_create(
        {"model": "wan2.5-i2i-preview", "input": {"prompt": "p", "images": [IMG]}}
    )
    assert request.n == 4
    assert request.size is None
    assert request.seed is None
    assert request.prompt_extend is True
    assert request.watermark is False


@pytest.mark.parametrize(
    ("field", "given", "kept"),
    [
        ("prompt", 2000, 2000),
        ("prompt", 2001, 2000),
        ("prompt", 2500, 2000),
        ("negative_prompt", 500, 500),
        ("negative_prompt", 501, 500),
        ("negative_prompt", 900, 500),
        ("negative_prompt", 0, 0),
    ],
)
def test_long_prompts_are_truncated_not_refused(field: str, given: int, kept: int) -> None:
    text = ("ab" * given)[:given]
    request = parse_create(body(**{f"input__{field}": text}))
    assert getattr(request, field) == text[:kept]


def test_the_documented_limits() -> None:
    assert (PROMPT_MAX_CHARS, NEGATIVE_PROMPT_MAX_CHARS) == (2000, 500)


@pytest.mark.parametrize(
    ("changes", "status", "code", "names"),
    [
        ({"model": None}, 400, "InvalidParameter", "model"),
        ({"model": "wanx-v1"}, 404, "ModelNotFound", ""),
        ({"input__prompt": ""}, 400, "InvalidParameter", "input.prompt"),
        ({"input__prompt": None}, 400, "InvalidParameter", "input.prompt"),
        ({"input__negative_prompt": 5}, 400, "InvalidParameter", "negative_prompt"),
        ({"input__images": []}, 400, "InvalidParameter", "input.images"),
        ({"input__images": [IMG] * 4}, 400, "InvalidParameter", "input.images"),
        ({"input__images": [IMG, 3]}, 400, "InvalidParameter", "input.images[1]"),
        ({"parameters__n": 5}, 400, "InvalidParameter", "parameters.n"),
        ({"parameters__n": 0}, 400, "InvalidParameter", "parameters.n"),
        ({"parameters__n": True}, 400, "InvalidParameter", "parameters.n"),
        ({"parameters__seed": -1}, 400, "InvalidParameter", "parameters.seed"),
        ({"parameters__seed": 2147483648}, 400, "InvalidParameter", "parameters.seed"),
        ({"parameters__size": "1024x1024"}, 400, "InvalidParameter", "parameters.size"),
        ({"parameters__prompt_extend": "yes"}, 400, "InvalidParameter", "prompt_extend"),
    ],
)
def test_invalid_fields_are_named(
    changes: dict[str, Any], status: int, code: str, names: str
) -> None:
    model = changes.pop("model", "wan2.5-i2i-preview")
    data = body(**changes)
    if model is None:
        del data["model"]
    else:
        data["model"] = model
    with pytest.raises(ApiError) as caught:
        parse_create(data)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert names in caught.value.message


@pytest.mark.parametrize("data", [[], "x", None, {"model": "wan2.5-i2i-preview"}])
def test_bodies_of_the_wrong_shape(data: Any) -> None:
    with pytest.raises(ApiError) as caught:
        parse_create(data)
    assert caught.value.code == "InvalidParameter"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024*1024", (1024, 1024)),
        ("1280*1280", (1280, 1280)),
        ("768*768", (768, 768)),
        (" 2560 * 640 ", (2560, 640)),
        ("640*2560", (640, 2560)),
        ("1280*720", (1280, 720)),
    ],
)
def test_valid_sizes(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["767*767", "1281*1280", "3000*600", "600*3000", "0*1024", "1024", "a*b", ""]
)
def test_invalid_sizes(text: str) -> None:
    with pytest.raises(ApiError):
        parse_size(text)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ((1000, 1000), (1280, 1280)),
        ((1920, 1080), (1696, 960)),
        ((1080, 1920), (960, 1696)),
        ((4000, 1000), (2560, 640)),
        ((5000, 384), (2560, 640)),
        ((384, 5000), (640, 2560)),
    ],
)
def test_default_size_follows_the_last_image(
    image: tuple[int, int], expected: tuple[int, int]
) -> None:
    size = default_size(*image)
    assert size == expected
    parse_size(f"{size[0]}*{size[1]}")
    assert size[0] % 16 == 0 and size[1] % 16 == 0
