"""Result images: real PNGs of the requested size that visibly use the inputs.

The inputs are laid side by side and fitted into the frame, tinted by a colour derived from the
image's seed, and the prompt is written on a band at the bottom, so a person looking at a result
can tell which inputs, prompt and seed produced it. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
import io
import textwrap
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

TINT_STRENGTH = 0.3
MAX_PROMPT_LINES = 4

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def seed_colour(seed: int) -> tuple[int, int, int]:
    """A stable, fairly saturated colour for a seed."""
    digest = hashlib.sha256(str(seed).encode()).digest()
    return (64 + digest[0] % 192, 64 + digest[1] % 192, 64 + digest[2] % 192)


def render_png(
    inputs: Sequence[Image.Image],
    size: tuple[int, int],
    seed: int,
    prompt: str,
    label: str = "",
) -> bytes:
    """An RGB PNG of exactly ``size`` composed from ``inputs``."""
    width, height = size
    font = _font(max(12, min(width, height) // 40))
    line_height = _line_height(font)
    lines = _wrap(prompt, font, width - 2 * line_height)
    if label:
        lines.insert(0, label)
    band = line_height * (len(lines) + 1)
    canvas = Image.new("RGB", size, seed_colour(seed))
    _paste_inputs(canvas, inputs, (width, max(1, height - band)))
    tint = Image.new("RGB", size, seed_colour(seed))
    canvas = Image.blend(canvas, tint, TINT_STRENGTH)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, height - band, width, height), fill=(20, 20, 20))
    y = height - band + line_height // 2
    for line in lines:
        draw.text((line_height, y), line, fill=(240, 240, 240), font=font)
        y += line_height
    out = io.BytesIO()
    # Speed over size: a benchmark renders many of these.
    canvas.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _paste_inputs(
    canvas: Image.Image, inputs: Sequence[Image.Image], area: tuple[int, int]
) -> None:
    if not inputs:
        return
    cell_w = area[0] // len(inputs)
    for i, image in enumerate(inputs):
        fitted = ImageOps.contain(image, (max(1, cell_w), area[1]))
        x = i * cell_w + (cell_w - fitted.width) // 2
        y = (area[1] - fitted.height) // 2
        canvas.paste(fitted, (x, y))


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        # Older Pillow or no FreeType: the fixed bitmap font still works.
        return ImageFont.load_default()


def _line_height(font: Font) -> int:
    _, top, _, bottom = font.getbbox("Ag")
    return int(bottom - top) + 6


def _wrap(text: str, font: Font, width: int) -> list[str]:
    char_width = max(1.0, font.getlength("abcdefghij") / 10)
    columns = max(10, int(width / char_width))
    lines = textwrap.wrap(" ".join(text.split()), columns) or [""]
    if len(lines) > MAX_PROMPT_LINES:
        lines = lines[:MAX_PROMPT_LINES]
        lines[-1] = lines[-1][: max(0, columns - 3)] + "..."
    return lines
