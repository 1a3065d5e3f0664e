"""The provider's documented answers, one file each in ``fixtures/``.

File format: the first line is ``// <source>`` (the page the answer comes from, or "constructed
from ..." when the documentation shows no verbatim example); further lines starting with ``//`` are
comments; the rest is one JSON object, either ``{"http_status": <int or null>, "body": <JSON>}`` or,
for a non-JSON answer, ``{"http_status": <int>, "content_type": "<type>", "text": "<raw body>"}``.
``http_status`` is null for a message the provider sends to us (the EventBridge event).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DIRECTORY = Path(__file__).parent / "fixtures"
COMMENT = "//"
JSON_TYPE = "application/json"
# Every key of a task-list row as documented; `start_time` and `end_time` only once known.
LIST_ROW_KEYS = frozenset(
    {
        "task_id",
        "status",
        "request_id",
        "gmt_create",
        "start_time",
        "end_time",
        "model_name",
        "region",
        "api_key_id",
        "caller_uid",
        "caller_parent_id",
        "user_api_unique_key",
    }
)


@dataclass(frozen=True)
class Fixture:
    """One documented answer.

    ``body`` is the decoded JSON answer (None for a non-JSON one); ``text`` the raw body of a
    non-JSON answer (None for a JSON one); ``content_type`` is the fixture's ``content_type``, or
    ``application/json`` for a JSON answer that names none.
    """

    name: str
    source: str
    http_status: int | None
    body: Any
    text: str | None
    content_type: str | None

    @property
    def is_json(self) -> bool:
        return self.text is None

    def raw(self) -> bytes:
        """The bytes a server would send: the JSON body encoded, or the text as is."""
        if self.text is not None:
            return self.text.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


def names() -> list[str]:
    """Every fixture's name, sorted."""
    return sorted(path.stem for path in DIRECTORY.glob("*.json"))


@cache
def load(name: str) -> Fixture:
    """The fixture ``fixtures/<name>.json``; raises ValueError when the file breaks the format."""
    path = DIRECTORY / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no contract fixture {name!r} ({path})")
    return parse(name, path.read_text(encoding="utf-8"))


def parse(name: str, content: str) -> Fixture:
    """A fixture from the text of its file."""
    lines = content.splitlines()
    if not lines or not lines[0].startswith(COMMENT):
        raise ValueError(f"{name}: the first line must be a '// <source>' comment")
    source = lines[0][len(COMMENT) :].strip()
    if not source:
        raise ValueError(f"{name}: the source comment is empty")
    rest = [line for line in lines[1:] if not line.lstrip().startswith(COMMENT)]
    try:
        data = json.loads("\n".join(rest))
    except ValueError as exc:
        raise ValueError(f"{name}: not JSON after the comments: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name}: the JSON part must be an object")
    status = data.get("http_status", ...)
    if status is ... or not (status is None or type(status) is int):
        raise ValueError(f"{name}: http_status must be an integer or null")
    has_body, has_text = "body" in data, "text" in data
    if has_body == has_text:
        raise ValueError(f"{name}: exactly one of 'body' and 'text' is needed")
    extra = set(data) - {"http_status", "body", "text", "content_type"}
    if extra:
        raise ValueError(f"{name}: unknown keys {sorted(extra)}")
    if has_text:
        if not isinstance(data["text"], str) or not isinstance(data.get("content_type"), str):
            raise ValueError(f"{name}: a non-JSON answer needs string 'text' and 'content_type'")
        return Fixture(name, source, status, None, data["text"], data["content_type"])
    return Fixture(name, source, status, data["body"], None, data.get("content_type", JSON_TYPE))
