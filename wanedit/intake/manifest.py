"""Manifest lines to edit requests, one line at a time. Pure: no Redis, no S3.

A manifest is JSONL (one request object a line) or CSV (a header of request field names). Lines
are read lazily, so a manifest of any length is never held in memory. A line that cannot be read
(bad JSON, too deeply nested, a CSV cell over the reader's limit, not UTF-8) becomes a Line with
an error; the lines after it are read as usual.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

Format = Literal["jsonl", "csv"]
# CSV cells are text; these fields are parsed into what the request model expects.
_INTEGERS = ("n", "seed")
_BOOLEANS = ("prompt_extend", "watermark")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Deeper JSON is refused before it is parsed (Python's parser would raise RecursionError).
JSON_DEPTH_MAX = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
# Bytes that were not UTF-8, as surrogateescape decoding leaves them.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


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
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text`, without parsing it (brackets inside
    strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def load_json(text: str) -> Any:
    """json.loads that raises ValueError, with a message naming the limit, for anything it
    cannot read: bad syntax, nesting deeper than JSON_DEPTH_MAX, numbers too long to convert."""
    if text.count("[") + text.count("{") > JSON_DEPTH_MAX:
        depth = json_depth(text)
        if depth > JSON_DEPTH_MAX:
            raise ValueError(
                f"JSON nested {depth} levels deep is over the limit of {JSON_DEPTH_MAX} levels"
            )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON ({str(exc).split(';')[0]})") from None


def _not_utf8(text: str) -> str | None:
    bad = _NOT_UTF8.search(text)
    if bad is None:
        return None
    byte = ord(bad.group()) - 0xDC00
    return f"not valid UTF-8 (byte 0x{byte:02x} at column {bad.start() + 1})"


def parse_jsonl(lines: Iterable[str], *, after: int = 0) -> Iterator[Line]:
    """One request object a line; blank lines are skipped but still counted. Lines numbered
    `after` or less are counted and not parsed (a batch resuming after its last line)."""
    for number, raw in enumerate(lines, start=1):
        if number <= after:
            continue
        text = raw.strip()
        if not text:
            continue
        digest = _digest(text)
        problem = _not_utf8(text)
        if problem is not None:
            yield Line(number, digest, error=problem)
            continue
        try:
            value = load_json(text)
        except ValueError as exc:
            yield Line(number, digest, error=str(exc))
            continue
        if not isinstance(value, dict):
            yield Line(number, digest, error=f"must be a JSON object, not {type(value).__name__}")
            continue
        yield Line(number, digest, fields=value)


def _cell(name: str, text: str) -> Any:
    if name == "images":
        if text.startswith("["):
            images = load_json(text)
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
        return load_json(text)
    return text


def _long_cell(raw: str, limit: int) -> int:
    """The index of the first cell of a CSV line longer than `limit` characters."""
    index = size = 0
    quoted = False
    for char in raw:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            index, size = index + 1, 0
        else:
            size += 1
            if size > limit:
                break
    return index


def _csv_problem(exc: csv.Error, raw: str, header: list[str] | None) -> str:
    limit = csv.field_size_limit()
    if "field larger than field limit" not in str(exc):
        return f"not valid CSV ({exc})"
    index = _long_cell(raw, limit)
    name = header[index] if header and index < len(header) else f"cell {index + 1}"
    return f"{name}: a cell of more than {limit} characters is over the CSV limit of {limit}"


def parse_csv(lines: Iterable[str], *, after: int = 0) -> Iterator[Line]:
    """A header of field names, then one request a row; empty cells are left out. Rows ending
    on line `after` or before are read for the header and their count, and not parsed."""
    last = [""]  # the physical line the reader took last, to name the cell of a csv.Error

    def remembered() -> Iterator[str]:
        for raw in lines:
            last[0] = raw
            yield raw

    reader = csv.reader(remembered())
    header: list[str] | None = None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader starts afresh on the next line: the rest of the manifest goes on.
            number, raw = reader.line_num, last[0]
            if number > after:
                problem = _csv_problem(exc, raw, header)
                if header is None:
                    problem = f"header: {problem}"
                yield Line(number, _digest(raw), error=problem)
            if header is None:
                return  # without a header no row can be read
            continue
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [name.strip() for name in row]
            continue
        if number <= after:
            continue
        yield _csv_line(number, row, header)


def _csv_line(number: int, row: list[str], header: list[str]) -> Line:
    digest = _digest(json.dumps(row))
    problem = _not_utf8("".join(row))
    if problem is not None:
        return Line(number, digest, error=problem)
    if len(row) > len(header):
        return Line(number, digest, error=f"{len(row)} cells for {len(header)} header fields")
    fields: dict[str, Any] = {}
    for name, text in zip(header, row, strict=False):
        if not text.strip():
            continue
        try:
            fields[name] = _cell(name, text.strip())
        except ValueError as exc:
            return Line(number, digest, error=f"{name}: {exc}")
    return Line(number, digest, fields=fields)


def parse_manifest(lines: Iterable[str], fmt: Format, *, after: int = 0) -> Iterator[Line]:
    """The manifest's lines after line `after` (0: all of them)."""
    return parse_csv(lines, after=after) if fmt == "csv" else parse_jsonl(lines, after=after)


def is_image_key(key: str) -> bool:
    return key.lower().endswith(IMAGE_EXTENSIONS)


def batch_id_for(location: str, content_digest: str) -> str:
    """The same manifest at the same place is the same batch, every time it runs."""
    return _digest(f"{location}\n{content_digest}")[:16]


def idempotency_key(batch_id: str, line: Line) -> str:
    """One key per (batch, line, content): a re-run finds the job it made before."""
    return f"batch-{batch_id}-{line.number}-{line.digest[:16]}"


def batch_of(key: str) -> str | None:
    """The batch whose line made a job with idempotency key `key` (see `idempotency_key`)."""
    if not key.startswith("batch-"):
        return None
    parts = key.removeprefix("batch-").rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[0]:
        return None
    return parts[0]
