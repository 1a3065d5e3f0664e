"""JSON bodies of the query and list answers, built from a task. Pure.

Times are written as the provider writes them, ``"YYYY-MM-DD hh:mm:ss.mmm"``. The real service
uses its local time (UTC+8 in Beijing); the sandbox uses UTC, which clients should not care about
since the string carries no zone either way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.errors import invalid_parameter
from sandbox.faults import IMAGE_FAILURE
from sandbox.tasks import CANCELED, FAILED, PENDING, SUCCEEDED, UNKNOWN, Task

# A fixed elaboration keeps actual_prompt deterministic, like a seeded prompt rewriter.
PROMPT_EXTENSION = ", highly detailed, natural lighting, consistent with the reference images"

UrlFor = Callable[[int], str]


def format_time(timestamp: float) -> str:
    """Unix seconds as ``"YYYY-MM-DD hh:mm:ss.mmm"`` (UTC)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def parse_list_time(name: str, text: str) -> float:
    """A list filter time ``YYYYMMDDhhmmss`` (UTC) as unix seconds."""
    try:
        moment = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        raise invalid_parameter(f"{name}: {text!r} is not of the form YYYYMMDDhhmmss.") from None
    return moment.timestamp()


def actual_prompt(task: Task) -> str:
    prompt = task.request.prompt
    return prompt + PROMPT_EXTENSION if task.request.prompt_extend else prompt


def unknown_output(task_id: str) -> dict[str, Any]:
    """The answer for an id that does not exist (or no longer exists) for this account."""
    return {"output": {"task_id": task_id, "task_status": UNKNOWN}}


def query_body(task: Task, now: float, url_for: UrlFor) -> dict[str, Any]:
    """``{"output": ..., "usage"?: ...}`` for ``GET /tasks/{id}`` at ``now``."""
    status = task.status(now)
    output: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": status,
        "submit_time": format_time(task.submit_at),
    }
    if status in (PENDING, CANCELED) or task.start_at is None:
        return {"output": output}
    output["scheduled_time"] = format_time(task.start_at)
    if status not in (SUCCEEDED, FAILED):
        return {"output": output}
    output["end_time"] = format_time(task.start_at + task.duration)
    if task.outcome.failure is not None:
        output["code"], output["message"] = task.outcome.failure
        return {"output": output}
    results = [_result(task, i, url_for) for i in range(task.request.n)]
    ok = task.request.n - len(task.outcome.failed_images)
    output["results"] = results
    output["task_metrics"] = {
        "TOTAL": task.request.n,
        "SUCCEEDED": ok,
        "FAILED": task.request.n - ok,
    }
    return {"output": output, "usage": {"image_count": ok}}


def list_entry(task: Task, now: float) -> dict[str, Any]:
    """One row of ``GET /tasks``."""
    entry: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": task.status(now),
        "model_name": task.request.model,
        "submit_time": format_time(task.submit_at),
    }
    if task.start_at is not None and task.canceled_at is None:
        entry["scheduled_time"] = format_time(task.start_at)
        if task.status(now) in (SUCCEEDED, FAILED):
            entry["end_time"] = format_time(task.start_at + task.duration)
    return entry


def _result(task: Task, index: int, url_for: UrlFor) -> dict[str, str]:
    if index in task.outcome.failed_images:
        code, message = IMAGE_FAILURE
        return {"code": code, "message": message}
    return {
        "url": url_for(index),
        "orig_prompt": task.request.prompt,
        "actual_prompt": actual_prompt(task),
    }
