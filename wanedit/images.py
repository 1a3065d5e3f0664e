"""Checks on image bytes against the provider's limits. Pure apart from reading headers.

Only an image's header is read (format, size, mode), and its pixel count is checked against the
provider's limit before anything could decode it: a 60-byte file whose header claims 20000x20000
px is refused with its size, never handed to a decoder.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from wanedit import limits

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)
MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "WEBP": "image/webp",
}
EXTENSION_BY_FORMAT = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp", "WEBP": "webp"}
# The most pixels an input may have: the provider's maximum side, squared.
PIXELS_MAX = limits.SIDE_MAX * limits.SIDE_MAX


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    size: int

    @property
    def mime(self) -> str:
        return MIME_BY_FORMAT[self.format]

    @property
    def extension(self) -> str:
        return EXTENSION_BY_FORMAT[self.format]


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_size(size: int, field: str) -> None:
    if size > limits.IMAGE_BYTES_MAX:
        raise ValueError(
            f"{field}: {_mb(size)} is over the provider's limit of "
            f"{_mb(limits.IMAGE_BYTES_MAX)} per image"
        )


def open_header(data: bytes) -> ImageFile.ImageFile:
    """The image with only its header read, found the way `Image.open` finds it but without
    Pillow's own decompression-bomb check: callers check the size against our limits."""
    Image.init()
    prefix = data[:16]
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        accepted = accept(prefix) if accept else True
        if not accepted or isinstance(accepted, str):
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise UnidentifiedImageError("cannot identify image file")


def check_pixels(width: int, height: int, name: str, limit: int = PIXELS_MAX) -> None:
    """Refuse an image of more than `limit` pixels, before it is decoded."""
    if width * height > limit:
        side = limits.SIDE_MAX
        raise ValueError(
            f"{name}: {width}x{height} px ({width * height:,} px) is over the provider's limit "
            f"of {side}x{side} px ({limit:,} px); refused before decoding"
        )


def inspect_image(data: bytes, field: str) -> ImageInfo:
    """Check format, alpha, side lengths and size from the header only; raise ValueError naming
    the field and the limit."""
    check_size(len(data), field)
    try:
        with open_header(data) as image:
            fmt, width, height, mode = image.format, image.width, image.height, image.mode
            has_alpha = mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"{field}: not a readable image ({exc.__class__.__name__})") from None
    check_pixels(width, height, field)
    if fmt not in limits.IMAGE_FORMATS:
        raise ValueError(
            f"{field}: format {fmt or 'unknown'} is not accepted "
            f"(the provider takes {', '.join(limits.IMAGE_FORMATS)})"
        )
    if fmt == "PNG" and has_alpha:
        raise ValueError(f"{field}: PNG with an alpha channel is not accepted by the provider")
    for side, value in (("width", width), ("height", height)):
        if value < limits.SIDE_MIN:
            raise ValueError(
                f"{field}: {width}x{height} px is below the provider's minimum {side} "
                f"of {limits.SIDE_MIN} px"
            )
        if value > limits.SIDE_MAX:
            raise ValueError(
                f"{field}: {width}x{height} px is above the provider's maximum {side} "
                f"of {limits.SIDE_MAX} px"
            )
    return ImageInfo(fmt, width, height, len(data))


def decode_data_uri(uri: str, field: str) -> bytes:
    """Decode a `data:{mime};base64,...` URI, refusing an oversized one before decoding it."""
    match = _DATA_URI.match(uri)
    if not match:
        raise ValueError(f"{field}: a data URI must look like data:image/png;base64,<data>")
    payload = match.group("data")
    check_size(len(payload) * 3 // 4, field)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{field}: the data URI is not valid base64") from None


def encode_data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
