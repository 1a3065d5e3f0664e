"""Thumbnails of results: small JPEGs, refused before decoding when the image is too big."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.conftest import make_image
from tests.unit.test_images import _png_claiming
from wanedit.thumbs import THUMB_SIDE, make_thumbnail


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1280, 960), (256, 192)), ((768, 1280), (154, 256)), ((200, 100), (200, 100))],
)
def test_a_thumbnail_is_a_jpeg_of_at_most_256_px_a_side(size, expected):
    thumb = make_thumbnail(make_image(*size, (200, 80, 40)), "result 0")
    with Image.open(io.BytesIO(thumb)) as image:
        assert (image.format, image.size) == ("JPEG", expected)
    assert max(expected) <= THUMB_SIDE
    assert len(thumb) < 20_000


def test_an_image_over_the_pixel_limit_is_refused_before_decoding():
    with pytest.raises(ValueError, match=r"result 0: 20000x20000 px .* refused before decoding"):
        make_thumbnail(_png_claiming(20000, 20000), "result 0")


def test_bytes_that_are_no_image_raise():
    with pytest.raises(Exception, match="cannot identify image file"):
        make_thumbnail(b"\x89PNG\r\n\x1a\n not really", "result 0")
