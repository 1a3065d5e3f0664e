"""Idempotency keys through the Python API: the same key returns the same job, even racing."""

from __future__ import annotations

import threading
from typing import Any

from producers import submit_edit
from producers.context import get_context

BUCKET = "wanedit-test"


def test_the_same_key_returns_the_same_job(stack_env: dict[str, str], run_id: str) -> None:
    key = f"web:order-{run_id}:v1"
    request: dict[str, Any] = {
        "prompt": "idempotent edit",
        "images": ["https://example.com/in.png"],
        "idempotency_key": key,
    }
    ctx = get_context()
    before = ctx.redis.zcard(ctx.admission.backlog_key("interactive"))
    first = submit_edit(request)
    assert submit_edit(request) == first
    assert ctx.redis.zcard(ctx.admission.backlog_key("interactive")) <= before + 1


def test_racing_requests_with_one_key_make_one_job(stack_env: dict[str, str], run_id: str) -> None:
    key = f"web:race-{run_id}"
    ids: list[str] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            ids.append(
                submit_edit(
                    prompt="racing edit",
                    images=["https://example.com/in.png"],
                    idempotency_key=key,
                    priority="batch",
                )
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 1
    ctx = get_context()
    queued = ctx.redis.zrange(ctx.admission.backlog_key("batch"), 0, -1)
    assert queued.count(ids[0]) == 1
