"""Manifest lines to edit requests, one line at a time. Pure: no Redis, no S3.

A manifest is JSONL (one request object a line) or CSV (a header of request field names). Lines
are read lazily, so a manifest of any length is never held in memory.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

Format = Literal["jsonl", "csv"]
# CSV cells are text; these fields are parsed into what the request model expects.
_INTEGERS = ("n", "seed")
_BOOLEANS = ("prompt_extend", "watermark")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Line:
    """One manifest line: the request fields, or why the line cannot be read."""

    number: int
    digest: str
    fields: dict[str, Any] | None = None
    error: str | None = None


def manifest_format(name: str) -> Format:
    """CSV by a `.csv` name, JSONL otherwise."""
    return "csv" if name.lower().split("?")[0].endswith(".csv") else "jsonl"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_jsonl(lines: Iterable[str]) -> Iterator[Line]:
    """One request object a line; blank lines are skipped but still counted."""
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        digest = _digest(text)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Line(number, digest, error=f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield Line(number, digest, error=f"must be a JSON object, not {type(value).__name__}")
            continue
        yield Line(number, digest, fields=value)


def _cell(name: str, text: str) -> Any:
    if name == "images":
        if text.startswith("["):
            images = json.loads(text)
            if not isinstance(images, list):
                raise ValueError("must be a JSON list or |-separated sources")
            return images
        return [part.strip() for part in text.split("|")]
    if name in _INTEGERS:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text[:20]!r} is not a whole number") from None
    if name in _BOOLEANS:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"{text[:20]!r} is not true or false")
    if name == "metadata":
        return json.loads(text)
    return text


def parse_csv(lines: Iterable[str]) -> Iterator[Line]:
    """A header of field names, then one request a row; empty cells are left out."""
    reader = csv.reader(lines)
    header: list[str] | None = None
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [name.strip() for name in row]
            continue
        digest = _digest(json.dumps(row))
        if len(row) > len(header):
            yield Line(number, digest, error=f"{len(row)} cells for {len(header)} header fields")
            continue
        fields: dict[str, Any] = {}
        try:
            for name, text in zip(header, row, strict=False):
                if text.strip():
                    fields[name] = _cell(name, text.strip())
        except (ValueError, json.JSONDecodeError) as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            yield Line(number, digest, error=f"{name}: {message}")
            continue
        yield Line(number, digest, fields=fields)


def parse_manifest(lines: Iterable[str], fmt: Format) -> Iterator[Line]:
    return parse_csv(lines) if fmt == "csv" else parse_jsonl(lines)


def is_image_key(key: str) -> bool:
    return key.lower().endswith(IMAGE_EXTENSIONS)


def batch_id_for(location: str, content_digest: str) -> str:
    """The same manifest at the same place is the same batch, every time it runs."""
    return _digest(f"{location}\n{content_digest}")[:16]


def idempotency_key(batch_id: str, line: Line) -> str:
    """One key per (batch, line, content): a re-run finds the job it made before."""
    return f"batch-{batch_id}-{line.number}-{line.digest[:16]}"
