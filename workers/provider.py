"""Parsed provider answers. Pure: turns JSON into typed values, or raises MalformedResponse."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wanedit import limits
from wanedit.errors import MalformedResponse

TASK_STATUSES = frozenset({"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})


@dataclass(frozen=True)
class ResultItem:
    """One requested image: a URL, or the code and message of its failure."""

    url: str | None = None
    actual_prompt: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class TaskState:
    """A provider task as one query saw it."""

    task_id: str
    status: str
    request_id: str | None = None
    results: list[ResultItem] = field(default_factory=list)
    code: str | None = None
    message: str | None = None
    image_count: int | None = None
    times: dict[str, str] = field(default_factory=dict)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _malformed(what: str) -> MalformedResponse:
    return MalformedResponse("MalformedResponse", f"the provider's answer {what}")


def parse_created(body: Any) -> tuple[str, str | None]:
    """The task id and request id of a create answer."""
    output = body.get("output") if isinstance(body, dict) else None
    task_id = _text(output.get("task_id")) if isinstance(output, dict) else None
    if task_id is None:
        raise _malformed("to a create call carries no output.task_id")
    return task_id, _text(body.get("request_id"))


def parse_task(body: Any, task_id: str) -> TaskState:
    """A query answer; anything we cannot trust raises MalformedResponse."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), dict):
        raise _malformed("to a query carries no output object")
    output = body["output"]
    status = output.get("task_status")
    if status not in TASK_STATUSES:
        raise _malformed(f"has an unknown task_status {str(status)[:40]!r}")
    results: list[ResultItem] = []
    raw_results = output.get("results") or []
    if not isinstance(raw_results, list):
        raise _malformed("has output.results that is not a list")
    for item in raw_results:
        if not isinstance(item, dict):
            raise _malformed("has a result that is not an object")
        url = _text(item.get("url"))
        if url is None and _text(item.get("code")) is None:
            raise _malformed("has a result with neither url nor code")
        results.append(
            ResultItem(
                url=url,
                actual_prompt=_text(item.get("actual_prompt")),
                code=_text(item.get("code")),
                message=_text(item.get("message")),
            )
        )
    if status == "SUCCEEDED" and not any(item.url for item in results):
        raise _malformed("says SUCCEEDED but holds no result URL")
    usage = body.get("usage")
    image_count = usage.get("image_count") if isinstance(usage, dict) else None
    if image_count is not None and (
        isinstance(image_count, bool)
        or not isinstance(image_count, int)
        or not 0 <= image_count <= limits.N_MAX
    ):
        # It is billed and counted against the daily cap: a wrong one must not be trusted.
        raise _malformed(
            f"has a usage.image_count {str(image_count)[:20]!r} outside 0 to {limits.N_MAX}"
        )
    times = {
        name: output[name]
        for name in ("submit_time", "scheduled_time", "end_time")
        if isinstance(output.get(name), str)
    }
    return TaskState(
        task_id=_text(output.get("task_id")) or task_id,
        status=status,
        request_id=_text(body.get("request_id")),
        results=results,
        code=_text(output.get("code")),
        message=_text(output.get("message")),
        image_count=image_count,
        times=times,
    )


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None


def task_seconds(times: dict[str, str]) -> float | None:
    """How long the provider worked on a task: end_time - scheduled_time (None if unknown)."""
    start, end = _time(times.get("scheduled_time")), _time(times.get("end_time"))
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def parse_list(body: Any) -> dict[str, str]:
    """Task id -> status from a `GET /tasks` answer."""
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise _malformed("to a list call carries no data list")
    statuses: dict[str, str] = {}
    for row in rows:
        if not isinstance(row, dict):
            raise _malformed("has a list row that is not an object")
        task_id, status = _text(row.get("task_id")), row.get("task_status")
        if task_id is None or status not in TASK_STATUSES:
            raise _malformed("has a list row without task_id or a known task_status")
        statuses[task_id] = status
    return statuses


@dataclass(frozen=True)
class ListedTask:
    """One row of a list answer, as reconciliation needs it."""

    task_id: str
    status: str
    submitted: float | None  # unix seconds, provider times read as UTC plus the offset


def parse_listed(body: Any, utc_offset_hours: float = 0.0) -> list[ListedTask]:
    """Rows of a `GET /tasks` answer with their submit times."""
    statuses = parse_list(body)
    rows = body["data"]
    listed = []
    for row in rows:
        task_id = _text(row.get("task_id"))
        if task_id is None:
            continue
        moment = _time(_text(row.get("submit_time")))
        submitted = None
        if moment is not None:
            submitted = moment.replace(tzinfo=UTC).timestamp() - utc_offset_hours * 3600
        listed.append(ListedTask(task_id, statuses[task_id], submitted))
    return listed
