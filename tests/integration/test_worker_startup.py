"""`celery -A wanedit.workers worker` refuses to start on a missing or bad setting, in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def start_worker(tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "WANEDIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "wanedit.workers", "worker", "--concurrency", "1"],
        env={**clean, "WANEDIT_REDIS_URL": "redis://127.0.0.1:1/0", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_api_key(tmp_path):
    result = start_worker(tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("wanedit:")]
    assert lines == [
        "wanedit: DASHSCOPE_API_KEY is not set: the workers need a Model Studio API key "
        "to call the provider"
    ]
    assert "Traceback" not in result.stderr


def test_bad_base_url(tmp_path):
    result = start_worker(
        tmp_path, DASHSCOPE_API_KEY="sk-x", DASHSCOPE_HTTP_BASE_URL="https://dashscope.aliyuncs.com"
    )
    assert result.returncode != 0
    assert (
        "wanedit: invalid settings: DASHSCOPE_HTTP_BASE_URL: must be a full http(s) base "
        "ending in /api/v1" in result.stderr
    )
    assert "sk-x" not in result.stderr


def test_celery_finds_the_app_after_the_task_modules_were_imported() -> None:
    """`celery -A wanedit.workers` must find the Celery app even in a process that imported the
    worker's modules first (a module named like the app attribute would shadow it)."""
    from celery import Celery
    from celery.app.utils import find_app

    import wanedit.workers.tasks  # noqa: F401  (imports the app's module)

    assert isinstance(find_app("wanedit.workers"), Celery)
