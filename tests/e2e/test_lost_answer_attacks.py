"""Attacks on "a lost create answer is never paid twice, and never loses its job".

A scripted proxy stands between a real worker and the sandbox: it passes every call through,
except those a test answers itself (after passing the create on, so the task exists).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.e2e.conftest import own_stack
from wanedit.producers import submit_edit, wait_for_job
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import SANDBOX_KEY, Worker

pytestmark = pytest.mark.integration
CREATE = "/services/aigc/image2image/image-synthesis"
# (kind of call, its number among calls of that kind) -> a WSGI answer, or None to pass it on.
Script = Callable[[str, int], Any]


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Proxy:
    """Passes calls to the sandbox; `script` may answer a call itself. Creates are always passed
    on first unless `pass_creates` is False, so a scripted create answer is a lost one. A
    scripted create is held `hold` seconds before it is passed on: it reaches the provider after
    the client gave up on it."""

    def __init__(
        self, upstream: str, script: Script, *, pass_creates: bool = True, hold: float = 0.0
    ) -> None:
        self.upstream = upstream
        self.hold = hold
        self.script = script
        self.pass_creates = pass_creates
        self.counts = {"create": 0, "list": 0, "other": 0}
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Quiet)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_port}/api/v1"

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path.removeprefix("/api/v1")
        kind = "create" if path == CREATE else "list" if path.rstrip("/") == "/tasks" else "other"
        with self._lock:
            self.counts[kind] += 1
            number = self.counts[kind]
        answer = self.script(kind, number)
        if answer is not None and kind == "create":
            time.sleep(self.hold)
        if answer is None or (kind == "create" and self.pass_creates):
            passed = requests.request(
                request.method,
                self.upstream + path,
                params=request.args,
                data=request.get_data(),
                headers={"Authorization": request.headers.get("Authorization", "")}
                | {k: v for k, v in request.headers if k.lower().startswith("x-dashscope")}
                | {"Content-Type": request.headers.get("Content-Type", "application/json")},
                timeout=30,
            )
            if answer is None:
                answer = Response(
                    passed.content,
                    passed.status_code,
                    content_type=passed.headers.get("content-type"),
                )
        return answer(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(body), status, mimetype="application/json")


def _cut_short(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A 200 whose body stops in the middle: the connection closes before Content-Length."""
    body = b'{"output": {"task_status": "PENDING", "task_id": "'
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body) + 60))]
    )
    return [body]


def _sandbox(list_delay: float) -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(
            api_keys=(SANDBOX_KEY,),
            duration_min=1.0,
            duration_max=1.5,
            list_delay=list_delay,
            seed=8,
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def slow_list() -> Iterator[SandboxServer]:
    # New tasks show in the list 2.5 s after they were made: after the reconcile's second look
    # (2 s after the loss), before its third.
    yield from _sandbox(2.5)


@pytest.fixture
def provider() -> Iterator[SandboxServer]:
    yield from _sandbox(0.0)


def _run(
    stack_env: dict[str, str],
    proxy: Proxy,
    tag: str,
    log: Path,
    source: str,
    extra: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    env, context = own_stack(
        stack_env,
        tag,
        proxy.base_url,
        {
            "WANEDIT_RECONCILE_DELAY": "1",
            "WANEDIT_RECONCILE_SKEW": "10",
            # A create may be sent again 1.5 s after it was sent (connect + read timeout).
            "WANEDIT_HTTP_CONNECT_TIMEOUT": "0.5",
            "WANEDIT_HTTP_READ_TIMEOUT": "1",
            "WANEDIT_RECONCILE_SETTLE": "0",
            **(extra or {}),
        },
    )
    worker = Worker(env, log_path=log, cwd=Path.cwd()).start()
    try:
        job_id = submit_edit(prompt=f"attack {tag}", images=[source], context=context)
        done = wait_for_job(job_id, 60, context=context)
        record = context.redis.hgetall(context.store.keys.job(job_id))
    finally:
        worker.stop()
        proxy.stop()
    return done, record


def test_a_failed_list_call_is_not_an_empty_look(
    stack_env, slow_list, tmp_path, image_file, run_id
):
    """The first look is throttled, the second is empty (the task is not listed yet): that is
    one empty look, not two, so the create is not sent again."""

    def script(kind: str, number: int) -> Any:
        if kind == "create" and number == 1:
            return _json({"code": "GatewayTimeout", "message": "upstream timed out"}, 504)
        if kind == "list" and number == 1:
            return _json({"code": "Throttling", "message": "Requests throttling triggered."}, 429)
        return None

    proxy = Proxy(slow_list.base_url, script)
    done, record = _run(
        stack_env, proxy, f"attack-429-{run_id}", tmp_path / "w.log", _image(image_file)
    )
    assert done["status"] == "succeeded", done["error"]
    assert record.get("reconciled") == "adopted"
    assert slow_list.stats()["creates"] == 1, "paid twice"


def test_a_throttled_task_list_never_ends_a_job_whose_create_may_have_made_a_task(
    stack_env, provider, tmp_path, image_file, run_id
):
    """The create's answer is lost and the next 6 list calls are throttled, well past the settle
    time and more than WANEDIT_RECONCILE_TRIES (2): a look that could not be made spends no
    look, so the job keeps looking (with backoff) and adopts its one task."""

    def script(kind: str, number: int) -> Any:
        if kind == "create" and number == 1:
            return _json({"code": "InternalError", "message": "An internal error has occured"}, 500)
        if kind == "list" and number <= 6:
            return _json({"code": "Throttling.RateQuota", "message": "rate limit exceeded"}, 429)
        return None

    proxy = Proxy(provider.base_url, script)
    done, record = _run(
        stack_env,
        proxy,
        f"attack-429s-{run_id}",
        tmp_path / "w.log",
        _image(image_file),
        {"WANEDIT_RECONCILE_TRIES": "2", "WANEDIT_RECONCILE_DELAY": "0.2"},
    )
    assert done["status"] == "succeeded", done["error"]
    assert record.get("reconciled") == "adopted"
    assert provider.stats()["creates"] == 1
    assert proxy.counts["list"] >= 7


def test_a_create_that_reaches_the_provider_after_the_client_gave_up_is_not_sent_again(
    stack_env, provider, tmp_path, image_file, run_id
):
    """The proxy holds the create 4 s and only then passes it on: the client's read timeout
    (1 s) has long given up, and the list is empty at the reconcile's first two looks (1 s and
    2 s after the loss). Only an empty look WANEDIT_RECONCILE_SETTLE (6 s) after the send may
    send the create again; by then the held create has made its task, which is adopted."""
    proxy = Proxy(
        provider.base_url,
        lambda kind, n: _json({}, 200) if kind == "create" and n == 1 else None,
        hold=4.0,
    )
    done, record = _run(
        stack_env,
        proxy,
        f"attack-held-{run_id}",
        tmp_path / "w.log",
        _image(image_file),
        {"WANEDIT_RECONCILE_SETTLE": "6"},
    )
    assert done["status"] == "succeeded", done["error"]
    assert provider.stats()["creates"] == 1, "a create held past the timeout was paid twice"
    assert record.get("reconciled") == "adopted"
    assert proxy.counts["create"] == 1


def test_a_create_answer_cut_mid_body_is_reconciled(
    stack_env, provider, tmp_path, image_file, run_id
):
    proxy = Proxy(
        provider.base_url, lambda kind, n: _cut_short if kind == "create" and n == 1 else None
    )
    done, record = _run(
        stack_env, proxy, f"attack-cut-{run_id}", tmp_path / "w.log", _image(image_file)
    )
    assert done["status"] == "succeeded", done["error"]
    assert record.get("reconciled") == "adopted"
    assert provider.stats()["creates"] == 1


def test_a_refused_list_call_does_not_end_a_paid_job(
    stack_env, provider, tmp_path, image_file, run_id
):
    def script(kind: str, number: int) -> Any:
        if kind == "create" and number == 1:
            return Response("<html>504 Gateway Time-out</html>", 504, mimetype="text/html")
        if kind == "list" and number == 1:
            return Response("<html>404 Not Found</html>", 404, mimetype="text/html")
        return None

    proxy = Proxy(provider.base_url, script)
    done, record = _run(
        stack_env, proxy, f"attack-404-{run_id}", tmp_path / "w.log", _image(image_file)
    )
    assert done["status"] == "succeeded", done["error"]
    assert record.get("reconciled") == "adopted"
    assert provider.stats()["creates"] == 1


def test_creates_never_answered_in_words_end_the_job_after_a_bounded_number(
    stack_env, provider, tmp_path, image_file, run_id
):
    """A proxy that answers every create with an HTML 403 and never passes it on: each create
    is unknown, two empty looks prove it made nothing, and after WANEDIT_RETRY_MAX creates sent
    again the job fails, unbilled, instead of looping for ever."""
    blocked = Response("<html><h1>403 Forbidden</h1>blocked</html>", 403, mimetype="text/html")
    proxy = Proxy(
        provider.base_url,
        lambda kind, n: blocked if kind == "create" else None,
        pass_creates=False,
    )
    done, _ = _run(
        stack_env,
        proxy,
        f"attack-403-{run_id}",
        tmp_path / "w.log",
        _image(image_file),
        {"WANEDIT_RETRY_MAX": "2"},
    )
    assert done["status"] == "failed"
    assert done["error"]["code"] == "Unknown"
    assert "3 creates were answered without a refusal" in done["error"]["message"]
    assert (done["usage"] or {}).get("image_count") in (None, 0)
    assert proxy.counts["create"] == 3
    assert provider.stats()["creates"] == 0


def _image(image_file: Any) -> str:
    return str(image_file("attack.png"))


def _foreign_rows(now: float) -> Response:
    """A list page of two tasks no job of ours made, submitted a moment ago."""
    rows = [
        {
            "task_id": f"foreign-{index}",
            "status": "RUNNING",
            "request_id": f"foreign-request-{index}",
            "gmt_create": int((now - 0.5 - index * 0.2) * 1000),
            "start_time": int((now - 0.4) * 1000),
            "model_name": "wan2.5-i2i-preview",
            "region": "cn-beijing",
            "api_key_id": "1",
        }
        for index in range(2)
    ]
    body = {"total": 2, "total_page": 1, "page_no": 1, "page_size": 50, "data": rows}
    return _json({"request_id": "list-request", **body}, 200)


def test_undecided_looks_before_the_settle_time_never_end_a_create_that_made_nothing(
    stack_env, provider, tmp_path, image_file, run_id
):
    """The create is answered 500 and made nothing. Until the settle time (4 s) the list shows
    two tasks no job owns (another service's, or peers' not adopted yet), so every look before
    it is undecided: far more than WANEDIT_RECONCILE_TRIES (2). Then the list is clear: two
    empty looks, and the create is sent again. Counting the looks before the settle time ended
    such a job `CreateOutcomeUnknown` at its first empty look (seen in the chaos suite)."""
    sent: list[float] = []

    def script(kind: str, number: int) -> Any:
        if kind == "create" and number == 1:
            sent.append(time.time())
            return _json({"code": "InternalError", "message": "An internal error"}, 500)
        if kind == "list" and sent and time.time() < sent[0] + 4.0:
            return _foreign_rows(time.time())
        return None

    proxy = Proxy(provider.base_url, script, pass_creates=False)
    done, record = _run(
        stack_env,
        proxy,
        f"attack-busy-{run_id}",
        tmp_path / "w.log",
        _image(image_file),
        {
            "WANEDIT_RECONCILE_TRIES": "2",
            "WANEDIT_RECONCILE_DELAY": "0.3",
            "WANEDIT_RECONCILE_SETTLE": "4",
        },
    )
    assert done["status"] == "succeeded", done["error"]
    assert record.get("reconciled") == "recreated"
    assert provider.stats()["creates"] == 1
    assert proxy.counts["create"] == 2
    assert proxy.counts["list"] >= 5, proxy.counts
