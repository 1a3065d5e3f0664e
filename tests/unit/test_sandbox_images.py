"""Input image checks: format, alpha, sides, weight, data URIs."""

import base64
import io

import pytest
from PIL import Image

from wanedit.sandbox.errors import ApiError
from wanedit.sandbox.images import decode_data_uri, inspect_image, load_image


def encode(size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 100, 50, 255)[: len(mode)]).save(out, format=fmt)
    return out.getvalue()


def noisy_jpeg() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((400, 400), 100).convert("RGB").save(out, format="JPEG")
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "WEBP"])
def test_supported_formats_are_accepted_and_thumbnailed(fmt: str) -> None:
    image = inspect_image("input.images[0]", encode((2000, 1000), fmt))
    assert (image.width, image.height) == (2000, 1000)
    assert image.open().size == (512, 256)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (encode((300, 600)), "300x600 px"),
        (encode((5001, 400)), "5001x400 px"),
        (encode((400, 400), "PNG", "RGBA"), "alpha"),
        (encode((400, 400), "GIF", "P"), "GIF"),
        (b"not an image", "not an image"),
        (noisy_jpeg()[:3000], "corrupt"),
    ],
)
def test_bad_images_are_refused_naming_the_field(data: bytes, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        inspect_image("input.images[1]", data)
    assert caught.value.code == "InvalidParameter"
    assert caught.value.message.startswith("input.images[1]")
    assert fragment in caught.value.message


def test_data_uris() -> None:
    data = encode((400, 400))
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    assert decode_data_uri("f", uri) == data
    for bad in ["data:image/jpeg,abc", "data:text/plain;base64,AAAA", "data:image/png;base64,@@"]:
        with pytest.raises(ApiError):
            decode_data_uri("f", bad)


@pytest.mark.parametrize("source", ["ftp://x/a.jpg", "not a url", "oss://bucket/a.png"])
def test_malformed_urls_are_invalid_url(source: str) -> None:
    def fetch(url: str) -> bytes:
        raise AssertionError("must not fetch")

    with pytest.raises(ApiError) as caught:
        load_image("input.images[0]", source, fetch)
    assert caught.value.code == "InvalidURL"
