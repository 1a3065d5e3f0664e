"""Image checks against the provider's file limits."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from wanedit.images import decode_data_uri, inspect_image


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP"])
def test_accepted_formats(fmt):
    info = inspect_image(encode(Image.new("RGB", (400, 500)), fmt), "images[0]")
    assert (info.format, info.width, info.height) == (fmt, 400, 500)


@pytest.mark.parametrize(
    ("image", "fmt", "problem"),
    [
        (
            Image.new("RGB", (300, 300)),
            "PNG",
            "images[0]: 300x300 px is below the provider's minimum width of 384 px",
        ),
        (
            Image.new("RGB", (400, 5001)),
            "PNG",
            "images[0]: 400x5001 px is above the provider's maximum height of 5000 px",
        ),
        (
            Image.new("RGBA", (400, 400)),
            "PNG",
            "images[0]: PNG with an alpha channel is not accepted by the provider",
        ),
        (
            Image.new("RGB", (400, 400)),
            "GIF",
            "images[0]: format GIF is not accepted (the provider takes JPEG, PNG, BMP, WEBP)",
        ),
    ],
)
def test_rejected_images(image, fmt, problem):
    with pytest.raises(ValueError) as raised:
        inspect_image(encode(image, fmt), "images[0]")
    assert str(raised.value) == problem


def test_not_an_image():
    with pytest.raises(ValueError, match=r"images\[2\]: not a readable image"):
        inspect_image(b"hello", "images[2]")


def test_oversized_bytes_are_refused_before_decoding():
    with pytest.raises(ValueError, match=r"over the provider's limit of 10.0 MB"):
        inspect_image(b"\0" * (10 * 1024 * 1024 + 1), "images[0]")


def test_data_uri_round_trip_and_errors():
    data = encode(Image.new("RGB", (400, 400)), "PNG")
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    assert decode_data_uri(uri, "images[0]") == data
    with pytest.raises(ValueError, match="must look like data:image/png;base64"):
        decode_data_uri("data:image/png,raw", "images[0]")
    with pytest.raises(ValueError, match="not valid base64"):
        decode_data_uri("data:image/png;base64,@@@", "images[0]")
    huge = "data:image/png;base64," + "A" * (15 * 1024 * 1024)
    with pytest.raises(ValueError, match="over the provider's limit"):
        decode_data_uri(huge, "images[0]")
