"""Storage event notifications in, edit requests out: parsing, rules, loop guard and dedupe.

Pure: no boto3, no redis. Reads AWS S3 notifications (as SQS message bodies), MinIO and
SeaweedFS notifications in MinIO's `access` format (a Redis list) and webhook bodies, which all
carry the same record shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from wanedit.config.listen import ListenRule
from wanedit.errors import InvalidEvent
from wanedit.storage import S3Location


@dataclass(frozen=True)
class ObjectEvent:
    """One object-created record."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    sequencer: str | None = None
    name: str = "ObjectCreated:Put"

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def idempotency_key(self, rule: ListenRule) -> str:
        """The same event (and rule) always gives the same key, so a redelivery is one job."""
        identity = [self.bucket, self.key, self.version_id or self.etag or "", self.sequencer or ""]
        identity.append(rule.model_dump_json())
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
        return f"s3-event-{digest[:48]}"


@dataclass(frozen=True)
class PlannedEdit:
    event: ObjectEvent
    request: dict[str, Any]


def _loads(body: str | bytes | dict[str, Any]) -> Any:
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"body: not JSON ({exc})") from None
    except RecursionError:
        raise InvalidEvent("body: JSON nested too deeply to read") from None


def _records(data: Any) -> list[Any]:
    """The records of any accepted envelope; [] for a test event."""
    if isinstance(data, list):
        # MinIO's access format may arrive as a list of entries; each is an envelope.
        records = []
        for index, entry in enumerate(data):
            if not isinstance(entry, dict):
                raise InvalidEvent(f"body[{index}]: must be an object, not {_kind(entry)}")
            records += _envelope(entry)
        return records
    if not isinstance(data, dict):
        raise InvalidEvent(f"body: a JSON object was expected, not {_kind(data)}")
    return _envelope(data)


def _envelope(data: dict[str, Any]) -> list[Any]:
    if data.get("Event") == "s3:TestEvent":
        return []  # sent once when a bucket notification is configured
    for field in ("Records", "Event"):
        if field in data:
            records = data[field]
            if not isinstance(records, list):
                raise InvalidEvent(f"{field}: must be a list of records, not {_kind(records)}")
            return records
    raise InvalidEvent("body: has neither Records (AWS, webhook) nor Event (MinIO access format)")


def _kind(value: Any) -> str:
    """A JSON value's type, as the sender wrote it."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _object(value: Any, where: str) -> dict[str, Any]:
    """An object field; a missing one reads as empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"{where}: must be an object, not {_kind(value)}")
    return value


def _text(value: Any, where: str, *, required: bool = False) -> str | None:
    """A string field: text that can be written as UTF-8 (JSON escapes can spell lone halves
    of a surrogate pair, which no S3 key or log line can hold)."""
    if value is None or value == "":
        if required:
            raise InvalidEvent(f"{where}: missing")
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{where}: must be a string, not {_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(f"{where}: is not valid UTF-8") from None
    return value


def _record(index: int, record: Any) -> ObjectEvent | None:
    where = f"Records[{index}]"
    if not isinstance(record, dict):
        raise InvalidEvent(f"{where}: must be an object, not {_kind(record)}")
    name = (_text(record.get("eventName"), f"{where}.eventName") or "").removeprefix("s3:")
    if not name.startswith("ObjectCreated:"):
        return None
    s3 = _object(record.get("s3"), f"{where}.s3")
    if not s3:
        raise InvalidEvent(f"{where}.s3: missing")
    bucket = _object(s3.get("bucket"), f"{where}.s3.bucket")
    obj = _object(s3.get("object"), f"{where}.s3.object")
    at = f"{where}.s3.object"
    key = _text(obj.get("key"), f"{at}.key", required=True)
    assert key is not None
    etag = _text(obj.get("eTag"), f"{at}.eTag") or _text(obj.get("etag"), f"{at}.etag")
    return ObjectEvent(
        bucket=_text(bucket.get("name"), f"{where}.s3.bucket.name", required=True) or "",
        key=unquote_plus(key),
        version_id=_text(obj.get("versionId"), f"{at}.versionId"),
        etag=(etag or "").strip('"') or None,
        sequencer=_text(obj.get("sequencer"), f"{at}.sequencer"),
        name=name,
    )


def parse_events(body: str | bytes | dict[str, Any]) -> list[ObjectEvent]:
    """The object-created records of a notification; other events are ignored."""
    records = _records(_loads(body))
    return [event for i, record in enumerate(records) if (event := _record(i, record))]


def guarded_prefixes(rules: Iterable[ListenRule]) -> list[S3Location]:
    """Where the edits are written: objects there never start an edit (no loops)."""
    return [S3Location.parse_prefix(rule.output) for rule in rules]


def plan_edits(
    events: Iterable[ObjectEvent],
    rules: Sequence[ListenRule],
    guarded: Sequence[S3Location] = (),
) -> list[PlannedEdit]:
    """One edit for each event and each rule it matches, except objects under any output."""
    outputs = [*guarded_prefixes(rules), *guarded]
    planned = []
    for event in events:
        if any(event.bucket == out.bucket and event.key.startswith(out.key) for out in outputs):
            continue
        for rule in rules:
            if rule.matches(event.bucket, event.key):
                request = rule.request_for(event.source, event.idempotency_key(rule))
                planned.append(PlannedEdit(event, request))
    return planned
