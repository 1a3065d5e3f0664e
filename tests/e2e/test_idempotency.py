"""Idempotency keys through the Python API: the same key returns the same job, even racing."""

from __future__ import annotations

import json
import threading
from typing import Any

from wanedit.intake.context import get_context
from wanedit.producers import submit_edit


def test_the_same_key_returns_the_same_job(stack_env: dict[str, str], run_id: str) -> None:
    key = f"web:order-{run_id}:v1"
    request: dict[str, Any] = {
        "prompt": "idempotent edit",
        "images": ["https://example.com/in.png"],
        "idempotency_key": key,
    }
    first = submit_edit(request)
    assert submit_edit(request) == first
    assert _jobs_with_key(key) == [first]


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
    assert _jobs_with_key(key) == [ids[0]]


def _jobs_with_key(key: str) -> list[str]:
    """Every job record whose request carries the idempotency key (a worker may have taken
    the job from the backlog already, so the records are what count)."""
    ctx = get_context()
    found = []
    for name in ctx.redis.scan_iter(match=ctx.store.keys.job("*"), count=1000):
        request = ctx.redis.hget(name, "request") or "{}"
        if json.loads(request).get("idempotency_key") == key:
            found.append(str(ctx.redis.hget(name, "id")))
    return found
