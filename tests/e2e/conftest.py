"""The whole pipeline on real parts: Redis, moto S3, the sandbox over HTTP, a Celery worker."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import LOCAL_ENV, SANDBOX_KEY, Worker, patched_env

BUCKET = "wanedit-test"
# Signs the tests' webhooks; test_secrets looks for it in everything the stack writes.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"e2e-test-webhook-signing-key-32").decode()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(api_keys=(SANDBOX_KEY,), duration_min=0.5, duration_max=1.5, seed=7)
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stack_env(
    redis_url: str,
    s3_server: dict[str, str],
    sandbox: SandboxServer,
    run_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """The settings shared by this process (producers) and the worker, isolated by run id."""
    env = {
        **s3_server,
        **LOCAL_ENV,
        # The tests' local images live under pytest's temporary directory.
        "WANEDIT_LOCAL_INPUT_DIRS": str(tmp_path_factory.getbasetemp().resolve()),
        "WANEDIT_REDIS_URL": redis_url,
        "WANEDIT_KEY_PREFIX": f"wanedit-test-{run_id}",
        "WANEDIT_QUEUE": f"wanedit-test-{run_id}",
        "WANEDIT_EVENTS_STREAM": f"wanedit-test-{run_id}:events",
        "WANEDIT_OUTPUT_URI": f"s3://{BUCKET}/out/",
        "DASHSCOPE_API_KEY": SANDBOX_KEY,
        "DASHSCOPE_HTTP_BASE_URL": sandbox.base_url,
        "WANEDIT_POLL_FIRST_DELAY": "0.5",
        "WANEDIT_POLL_INTERVAL": "0.5",
        "WANEDIT_POLL_MAX_INTERVAL": "1",
        "WANEDIT_RETRY_BASE": "0.2",
        "WANEDIT_RETRY_CAP": "1",
        "WANEDIT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # The completion tasks the tests name (test_cli, test_callbacks), on queues of their own.
        "WANEDIT_ON_COMPLETE_TASKS": "myapp.tasks.on_edit,tests.callback_app.record_event",
        "WANEDIT_ON_COMPLETE_QUEUES": "*",
        # The bucket of docs/storage-events.md (test_listen): the worker has no listen rules, so
        # it is allowed by name, as that page says.
        "WANEDIT_INPUT_BUCKETS": "photos",
        "WANEDIT_OUTPUT_BUCKETS": "photos",
    }
    with patched_env(env):
        _reset_process_state()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        try:
            yield env
        finally:
            _reset_process_state()


def _reset_process_state() -> None:
    from wanedit.config.settings import get_settings
    from wanedit.intake.context import reset_context

    get_settings.cache_clear()
    reset_context()


@pytest.fixture(scope="session")
def worker(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = Worker(stack_env, concurrency=2, log_path=log, cwd=Path(__file__).parents[2])
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(process.tail(40))


def own_stack(
    stack_env: dict[str, str], tag: str, provider_url: str, extra: dict[str, str] | None = None
) -> tuple[dict[str, str], Any]:
    """A worker environment with a queue, key prefix and event stream of its own (its worker sees
    only its jobs), against the provider at `provider_url`, and a producer context for it."""
    from wanedit.config.settings import load_settings
    from wanedit.intake.context import build_context

    env = {
        **stack_env,
        "DASHSCOPE_HTTP_BASE_URL": provider_url,
        "WANEDIT_QUEUE": tag,
        "WANEDIT_KEY_PREFIX": tag,
        "WANEDIT_EVENTS_STREAM": f"{tag}:events",
        **(extra or {}),
    }
    settings = load_settings(
        queue=tag,
        key_prefix=tag,
        events_stream=f"{tag}:events",
        dashscope_http_base_url=provider_url,
    )
    return env, build_context(settings)


@pytest.fixture
def s3(stack_env: dict[str, str]) -> Any:
    return boto3.client("s3")


@pytest.fixture
def producer(stack_env: dict[str, str], worker: Worker):
    from wanedit.intake.context import get_context

    return get_context()
