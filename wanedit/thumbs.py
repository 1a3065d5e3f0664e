"""Thumbnails of results: a small JPEG of a PNG, decoded only after its size is checked. Pure."""

from __future__ import annotations

import io

from PIL import Image

from wanedit.images import check_pixels, open_header

THUMB_SIDE = 256
THUMB_QUALITY = 80


def make_thumbnail(data: bytes, name: str, side: int = THUMB_SIDE) -> bytes:
    """A JPEG of at most `side` px a side; raises ValueError (or Pillow's errors) for an image
    that is not one or is over the pixel limit."""
    with open_header(data) as image:
        check_pixels(image.width, image.height, name)  # before anything is decoded
        image.draft("RGB", (side, side))
        small = image.convert("RGB")
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=THUMB_QUALITY, optimize=True)
    return buffer.getvalue()
