"""Parsed provider answers. Pure: turns JSON into typed values, or raises MalformedResponse."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wanedit import limits
from wanedit.errors import MalformedResponse
from wanedit.provider_time import epoch_millis, provider_moment

TASK_STATUSES = frozenset({"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})
# The SDK knows SUSPENDED too (undocumented for this API): read as a task that has not ended.
KNOWN_STATUSES = TASK_STATUSES | {"SUSPENDED"}
ENDED_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"})


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
    if status not in KNOWN_STATUSES:
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


def task_seconds(times: dict[str, str]) -> float | None:
    """How long the provider worked on a task: end_time - scheduled_time (None if unknown).

    Both are in the provider's zone, so the difference needs none."""
    start = provider_moment(times.get("scheduled_time"), 0.0)
    end = provider_moment(times.get("end_time"), 0.0)
    if start is None or end is None or end < start:
        return None
    return end - start


@dataclass(frozen=True)
class ListedTask:
    """One row of the task list. Times are unix seconds (the rows carry epoch milliseconds)."""

    task_id: str
    status: str
    request_id: str | None = None  # the request id of the create call that made the task
    submitted: float | None = None  # gmt_create
    started: float | None = None  # start_time: when it was scheduled
    ended: float | None = None  # end_time: absent until it ends
    api_key_id: str | None = None

    @property
    def has_ended(self) -> bool:
        return self.status in ENDED_STATUSES


@dataclass(frozen=True)
class ListPage:
    """One page of a `GET /tasks` answer."""

    rows: list[ListedTask]
    total: int
    total_page: int
    page_no: int
    page_size: int


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _malformed(f"to a list call has {name} {str(value)[:20]!r}, not a count")
    return value


def parse_list_page(body: Any) -> ListPage:
    """A `GET /tasks` answer: `{request_id, total, total_page, page_no, page_size, data}`, each
    row `{task_id, status, request_id, gmt_create, start_time, end_time, ...}`."""
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(rows, list):
        raise _malformed("to a list call carries no data list")
    listed = []
    for row in rows:
        if not isinstance(row, dict):
            raise _malformed("has a list row that is not an object")
        task_id, status = _text(row.get("task_id")), row.get("status")
        if task_id is None or status not in KNOWN_STATUSES:
            raise _malformed(
                f"has a list row without task_id or a known status ({str(status)[:40]!r})"
            )
        listed.append(
            ListedTask(
                task_id=task_id,
                status=status,
                request_id=_text(row.get("request_id")),
                submitted=epoch_millis(row.get("gmt_create")),
                started=epoch_millis(row.get("start_time")),
                ended=epoch_millis(row.get("end_time")),
                api_key_id=_text(row.get("api_key_id")),
            )
        )
    return ListPage(
        rows=listed,
        total=_count(body, "total"),
        total_page=_count(body, "total_page"),
        page_no=_count(body, "page_no"),
        page_size=_count(body, "page_size"),
    )


def parse_cancel(body: Any) -> None:
    """A cancel answer: HTTP 200 with only a request id means the PENDING task is canceled.

    A 200 that carries an error code, or says the task is in another state, is not taken for a
    cancel: the job would end unbilled while its task runs and bills."""
    if not isinstance(body, dict):
        raise _malformed("to a cancel call is not an object")
    output = body.get("output")
    status = output.get("task_status") if isinstance(output, dict) else None
    if body.get("code") or (output is not None and status not in ("CANCELED", "PENDING")):
        raise _malformed(
            f"to a cancel call does not say canceled (code {str(body.get('code'))[:40]!r}, "
            f"task_status {str(status)[:20]!r})"
        )


@dataclass(frozen=True)
class FinishEvent:
    """The provider's `dashscope:System:AsyncTaskFinish` event: a hint to query, never a fact."""

    event_id: str
    task_id: str
    task_status: str
    request_id: str | None
    ended: float | None  # data.end_time, read in the provider's zone
    api_key_id: str | None


FINISH_EVENT_TYPE = "dashscope:System:AsyncTaskFinish"


def parse_finish_event(body: Any, utc_offset_hours: float) -> FinishEvent:
    """A CloudEvents 1.0 `AsyncTaskFinish` event from EventBridge, or MalformedResponse."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise _malformed("event carries no data object")
    if body.get("source") != "acs.dashscope" or body.get("type") != FINISH_EVENT_TYPE:
        raise _malformed(
            f"event is {str(body.get('type'))[:60]!r} from {str(body.get('source'))[:40]!r}, "
            f"not {FINISH_EVENT_TYPE} from acs.dashscope"
        )
    data = body["data"]
    task_id, status = _text(data.get("task_id")), data.get("task_status")
    if task_id is None or status not in KNOWN_STATUSES:
        raise _malformed("event has no task_id or no known task_status")
    return FinishEvent(
        event_id=_text(body.get("id")) or "",
        task_id=task_id,
        task_status=status,
        request_id=_text(data.get("request_id")),
        ended=provider_moment(data.get("end_time"), utc_offset_hours),
        api_key_id=_text(data.get("api_key_id")),
    )
