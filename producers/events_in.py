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


def _records(data: Any) -> list[Any]:
    """The records of any accepted envelope; [] for a test event."""
    if isinstance(data, list):
        # MinIO's access format may arrive as a list of entries; each is an envelope.
        return [record for entry in data for record in _records(entry)]
    if not isinstance(data, dict):
        raise InvalidEvent(f"body: a JSON object was expected, not {type(data).__name__}")
    if data.get("Event") == "s3:TestEvent":
        return []  # sent once when a bucket notification is configured
    for field in ("Records", "Event"):
        if field in data:
            records = data[field]
            if not isinstance(records, list):
                raise InvalidEvent(f"{field}: must be a list of records")
            return records
    raise InvalidEvent("body: has neither Records (AWS, webhook) nor Event (MinIO access format)")


def _record(index: int, record: Any) -> ObjectEvent | None:
    where = f"Records[{index}]"
    if not isinstance(record, dict):
        raise InvalidEvent(f"{where}: must be an object")
    name = str(record.get("eventName") or "").removeprefix("s3:")
    if not name.startswith("ObjectCreated:"):
        return None
    s3 = record.get("s3")
    if not isinstance(s3, dict):
        raise InvalidEvent(f"{where}.s3: missing")
    bucket = (s3.get("bucket") or {}).get("name")
    obj = s3.get("object") or {}
    key = obj.get("key")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidEvent(f"{where}.s3.bucket.name: missing")
    if not isinstance(key, str) or not key:
        raise InvalidEvent(f"{where}.s3.object.key: missing")
    return ObjectEvent(
        bucket=bucket,
        key=unquote_plus(key),
        version_id=obj.get("versionId") or None,
        etag=(obj.get("eTag") or obj.get("etag") or "").strip('"') or None,
        sequencer=obj.get("sequencer") or None,
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
