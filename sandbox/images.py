"""Input images: fetch or decode them, check them as the provider does, keep a small copy.

Only a downscaled JPEG thumbnail is kept with a task (not the original bytes), so a long
benchmark holding thousands of tasks for their 24 hours stays small in memory.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from PIL import Image, UnidentifiedImageError

from wanedit.sandbox.errors import ApiError, download_failed, invalid_parameter, invalid_url

MAX_BYTES = 10 * 1024 * 1024
MIN_SIDE = 384
MAX_SIDE = 5000
THUMBNAIL_SIDE = 512
FETCH_TIMEOUT = 10.0
# MPO is how Pillow names many camera JPEGs.
ALLOWED_FORMATS = {"JPEG", "MPO", "PNG", "BMP", "WEBP"}

Fetcher = Callable[[str], bytes]


@dataclass(frozen=True)
class InputImage:
    """An accepted input image: its real size and a small JPEG copy for rendering."""

    width: int
    height: int
    thumbnail: bytes

    def open(self) -> Image.Image:
        """The thumbnail as an RGB Pillow image."""
        return Image.open(io.BytesIO(self.thumbnail)).convert("RGB")


def load_images(sources: tuple[str, ...], fetch: Fetcher | None = None) -> list[InputImage]:
    """Fetch or decode each source and check it; raise ApiError for the first bad one."""
    fetcher = fetch or fetch_url
    return [load_image(f"input.images[{i}]", src, fetcher) for i, src in enumerate(sources)]


def load_image(field: str, source: str, fetch: Fetcher) -> InputImage:
    """One source (an http(s) URL or a data URI) to a checked InputImage."""
    if source.startswith("data:"):
        data = decode_data_uri(field, source)
    else:
        parts = urlsplit(source)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid_url(field)
        data = fetch(source)
    return inspect_image(field, data)


def decode_data_uri(field: str, uri: str) -> bytes:
    """The bytes of a ``data:{mime};base64,...`` URI."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.endswith(";base64"):
        raise invalid_parameter(f"{field}: a data URI must look like data:{{mime}};base64,...")
    mime = header[len("data:") : -len(";base64")]
    if not mime.startswith("image/"):
        raise invalid_parameter(f"{field}: the data URI type {mime!r} is not an image type.")
    if len(payload) > MAX_BYTES * 4 // 3 + 8:
        raise _too_large(field, len(payload) * 3 // 4)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_parameter(f"{field}: the data URI is not valid base64.") from None


def fetch_url(url: str) -> bytes:
    """Download ``url`` as the provider would, at most MAX_BYTES + 1 bytes of it."""
    try:
        with requests.get(url, timeout=FETCH_TIMEOUT, stream=True) as response:
            if response.status_code != 200:
                raise download_failed()
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_content(64 * 1024):
                chunks.append(chunk)
                total += len(chunk)
                if total > MAX_BYTES:
                    break
            return b"".join(chunks)
    except requests.RequestException:
        raise download_failed() from None


def inspect_image(field: str, data: bytes) -> InputImage:
    """Check format, alpha, sides and weight; keep a thumbnail. Pure."""
    if len(data) > MAX_BYTES:
        raise _too_large(field, len(data))
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError):
        raise invalid_parameter(
            f"{field}: the file is not an image of a supported format (JPEG, JPG, PNG, BMP, WEBP)."
        ) from None
    with image:
        if image.format not in ALLOWED_FORMATS:
            raise invalid_parameter(
                f"{field}: format {image.format} is not supported; use JPEG, JPG, PNG, BMP or WEBP."
            )
        width, height = image.size
        if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
            raise invalid_parameter(
                f"{field}: {width}x{height} px is outside the allowed side length of "
                f"{MIN_SIDE} to {MAX_SIDE} px."
            )
        if image.format == "PNG" and _has_alpha(image):
            raise invalid_parameter(f"{field}: PNG images with an alpha channel are not supported.")
        try:
            image.load()
        except (OSError, ValueError):
            raise invalid_parameter(f"{field}: the image data is corrupt.") from None
        return InputImage(width, height, _thumbnail(image))


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _thumbnail(image: Image.Image) -> bytes:
    small = image.convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _too_large(field: str, size: int) -> ApiError:
    return invalid_parameter(
        f"{field}: {size / 1024 / 1024:.1f} MB exceeds the provider's limit of 10 MB."
    )
