"""JSON bodies of the query and list answers, built from a task. Pure.

Time strings are written as the provider writes them, ``"YYYY-MM-DD hh:mm:ss.mmm"``, in the
provider's zone: docs/dashscope.md, "Time strings are Beijing time (UTC+8), not UTC". The zone is
``SandboxConfig.utc_offset_hours`` (8 by default). The list's filter times ``YYYYMMDDhhmmss`` are
read in the same zone. List rows carry times as integer milliseconds since the epoch, which
have no zone.

Both forms come from the same whole millisecond, so a row's ``gmt_create`` and the query's
``submit_time`` name the same instant.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from wanedit.sandbox.accounts import api_key_id, uid
from wanedit.sandbox.errors import invalid_parameter
from wanedit.sandbox.tasks import CANCELED, FAILED, PENDING, SUCCEEDED, UNKNOWN, Task

# A fixed elaboration keeps actual_prompt deterministic, like a seeded prompt rewriter.
PROMPT_EXTENSION = ", highly detailed, natural lighting, consistent with the reference images"
LIST_TIME_FORMAT = "%Y%m%d%H%M%S"

UrlFor = Callable[[int], str]


def epoch_ms(timestamp: float) -> int:
    """Unix seconds as whole milliseconds since the epoch."""
    return round(timestamp * 1000)


def format_time(timestamp: float, zone: tzinfo) -> str:
    """Unix seconds as ``"YYYY-MM-DD hh:mm:ss.mmm"`` in ``zone``."""
    ms = epoch_ms(timestamp)
    moment = datetime.fromtimestamp(ms // 1000, tz=zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def parse_list_time(name: str, text: str, zone: tzinfo) -> int:
    """A list filter time ``YYYYMMDDhhmmss`` in ``zone`` as whole unix seconds."""
    try:
        if len(text) != 14 or not text.isdigit():
            raise ValueError(text)
        moment = datetime.strptime(text, LIST_TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise invalid_parameter(f"{name}: {text!r} is not of the form YYYYMMDDhhmmss.") from None
    return int(moment.timestamp())


def actual_prompt(task: Task) -> str:
    prompt = task.request.prompt
    return prompt + PROMPT_EXTENSION if task.request.prompt_extend else prompt


def unknown_output(task_id: str) -> dict[str, Any]:
    """The answer for an id that does not exist (or no longer exists) for this account."""
    return {"output": {"task_id": task_id, "task_status": UNKNOWN}}


def query_body(task: Task, now: float, url_for: UrlFor, zone: tzinfo) -> dict[str, Any]:
    """``{"output": ..., "usage"?: ...}`` for ``GET /tasks/{id}`` at ``now``."""
    status = task.status(now)
    output: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": status,
        "submit_time": format_time(task.submit_at, zone),
    }
    if status in (PENDING, CANCELED) or task.start_at is None:
        return {"output": output}
    output["scheduled_time"] = format_time(task.start_at, zone)
    if status not in (SUCCEEDED, FAILED):
        return {"output": output}
    output["end_time"] = format_time(task.start_at + task.duration, zone)
    n = task.request.n
    if task.outcome.failure is not None:
        # docs/dashscope.md: FAILED has code, message and task_metrics with SUCCEEDED 0, no usage.
        output["code"], output["message"] = task.outcome.failure
        output["task_metrics"] = {"TOTAL": n, "SUCCEEDED": 0, "FAILED": n}
        return {"output": output}
    ok = n - len(task.outcome.failed_images)
    output["results"] = [_result(task, i, url_for) for i in range(n)]
    output["task_metrics"] = {"TOTAL": n, "SUCCEEDED": ok, "FAILED": n - ok}
    return {"output": output, "usage": {"image_count": ok}}


def list_status(task: Task, now: float) -> str:
    """The status a list row shows: UNKNOWN for ``[sandbox:expire]`` tasks (a sandbox choice)."""
    return UNKNOWN if task.outcome.expired else task.status(now)


def list_row(task: Task, now: float, region: str) -> dict[str, Any]:
    """One row of ``GET /tasks`` (docs/dashscope.md, "The task list").

    ``start_time`` is absent until the task is scheduled (so while PENDING, and for a task
    canceled while PENDING); ``end_time`` is absent until it ends. A CANCELED task ended when it
    was canceled: its ``end_time`` is that instant (a sandbox choice, the docs are silent).
    """
    status = task.status(now)
    row: dict[str, Any] = {
        "task_id": task.task_id,
        "status": list_status(task, now),
        "request_id": task.request_id,
        "gmt_create": epoch_ms(task.submit_at),
    }
    if status != PENDING and status != CANCELED and task.start_at is not None:
        row["start_time"] = epoch_ms(task.start_at)
    if status in (SUCCEEDED, FAILED) and task.end_at is not None:
        row["end_time"] = epoch_ms(task.end_at)
    elif status == CANCELED and task.canceled_at is not None:
        row["end_time"] = epoch_ms(task.canceled_at)
    model = task.request.model
    row.update(
        {
            "model_name": model,
            "region": region,
            "api_key_id": api_key_id(task.api_key),
            "caller_uid": uid(task.api_key),
            "caller_parent_id": uid(task.account),
            "user_api_unique_key": f"apikey:v1:aigc:image2image:image-synthesis:{model}",
        }
    )
    return row


def _result(task: Task, index: int, url_for: UrlFor) -> dict[str, str]:
    failure = task.outcome.failed_images.get(index)
    if failure is not None:
        code, message = failure
        return {"code": code, "message": message}
    return {
        "url": url_for(index),
        "orig_prompt": task.request.prompt,
        "actual_prompt": actual_prompt(task),
    }
