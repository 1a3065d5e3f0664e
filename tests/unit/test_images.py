"""Image checks against the provider's file limits."""

from __future__ import annotations

import base64
import io
import struct
import zlib

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


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims `width` x `height` px."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _bmp_claiming(width: int, height: int) -> bytes:
    """A 54-byte BMP header claiming `width` x `height` px, with no pixels behind it."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + len(info) - 40, 0, 0, 54) + info


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is changed to claim `width` x `height` px."""
    data = bytearray(encode(Image.new("RGB", (16, 16)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("claiming", [_png_claiming, _bmp_claiming, _jpeg_claiming])
def test_a_decompression_bomb_is_refused_by_its_header_before_decoding(claiming):
    bomb = claiming(20000, 20000)
    assert len(bomb) < 1000
    with pytest.raises(ValueError) as raised:
        inspect_image(bomb, "images[1]")
    assert str(raised.value) == (
        "images[1]: 20000x20000 px (400,000,000 px) is over the provider's limit of "
        "5000x5000 px (25,000,000 px); refused before decoding"
    )


def test_the_pixel_limit_is_the_providers_largest_side_squared():
    from wanedit.images import check_pixels

    check_pixels(5000, 5000, "images[0]")  # the largest image the provider takes
    with pytest.raises(ValueError, match=r"images\[0\]: 5001x5000 px .* 5000x5000 px"):
        check_pixels(5001, 5000, "images[0]")
