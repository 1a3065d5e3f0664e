"""A real worker against a provider that creates tasks fine and then answers their queries with
garbage: gateway pages, non-JSON, missing fields, wrong types, huge and deeply nested bodies.
The worker must stay up, and every job must end (or wait) with its error in the record."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.conftest import make_image
from wanedit.config.settings import Settings
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers import get_job, submit_edit
from wanedit.sandbox.stack import SANDBOX_KEY, Worker, patched_env
from wanedit.workers.client import MAX_BODY

pytestmark = pytest.mark.integration
PNG = make_image(512, 512, (30, 60, 90))


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, mimetype="application/json")


# What a query about a task of each kind is answered with, given the base URL and how often
# that task has been asked about already.
ANSWERS: dict[str, Any] = {
    "html": lambda base, n: Response(
        "<html><h1>502 Bad Gateway</h1></html>", 502, mimetype="text/html"
    ),
    "text": lambda base, n: Response("<html>all good</html>", 200, mimetype="text/html"),
    "empty": lambda base, n: Response("", 200, mimetype="application/json"),
    "missing": lambda base, n: _json({"request_id": "r-1"}),
    "status": lambda base, n: _json({"output": {"task_status": 7, "task_id": ["x"]}}),
    "results": lambda base, n: _json({"output": {"task_status": "SUCCEEDED", "results": "x"}}),
    "count": lambda base, n: _json(
        {
            "output": {"task_status": "SUCCEEDED", "results": [{"url": f"{base}/result.png"}]},
            "usage": {"image_count": "1"},
        }
    ),
    "negative": lambda base, n: _json(
        {
            "output": {"task_status": "SUCCEEDED", "results": [{"url": f"{base}/result.png"}]},
            "usage": {"image_count": -3},
        }
    ),
    "huge": lambda base, n: _json(
        {"output": {"task_status": "RUNNING"}, "pad": "x" * 2 * MAX_BODY}
    ),
    "deep": lambda base, n: Response(
        "[" * 100_000 + "]" * 100_000, 200, mimetype="application/json"
    ),
    "badurl": lambda base, n: _json(
        {
            "output": {"task_status": "SUCCEEDED", "results": [{"url": "not a url"}]},
            "usage": {"image_count": 1},
        }
    ),
    "recover": lambda base, n: (
        ANSWERS["html"](base, n)
        if n < 2
        else _json(
            {
                "output": {
                    "task_status": "SUCCEEDED",
                    "results": [{"url": f"{base}/result.png"}],
                },
                "usage": {"image_count": 1},
            }
        )
    ),
}
# How each job must end: (status, error code, a fragment of the error message).
EXPECTED = {
    "html": ("failed", "PollDeadlineExceeded", "HTTP 502"),
    "text": ("failed", "PollDeadlineExceeded", "is not JSON"),
    "empty": ("failed", "PollDeadlineExceeded", "is not JSON"),
    "missing": ("failed", "PollDeadlineExceeded", "carries no output object"),
    "status": ("failed", "PollDeadlineExceeded", "unknown task_status '7'"),
    "results": ("failed", "PollDeadlineExceeded", "output.results that is not a list"),
    "count": ("failed", "PollDeadlineExceeded", "usage.image_count '1'"),
    "negative": ("failed", "PollDeadlineExceeded", "usage.image_count '-3'"),
    "huge": ("failed", "PollDeadlineExceeded", f"is over {MAX_BODY} bytes"),
    "deep": ("failed", "PollDeadlineExceeded", "is not JSON"),
    "badurl": ("failed", "UrlNotAllowed", "is not http or https"),
    "recover": ("succeeded", None, ""),
}


class RogueProvider:
    """Creates tasks like the provider; answers queries about them however ANSWERS says."""

    def __init__(self) -> None:
        self.queries: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, Request.application(self.handle), threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    @property
    def base_url(self) -> str:
        return f"{self.base}/api/v1"

    def handle(self, request: Request) -> Response:
        path = request.path.removeprefix("/api/v1")
        if path == "/result.png":
            return Response(PNG, 200, mimetype="image/png")
        if request.method == "POST" and path.endswith("/image-synthesis"):
            prompt = (request.get_json(silent=True) or {}).get("input", {}).get("prompt", "")
            task_id = f"{prompt.split()[0]}-{uuid.uuid4().hex[:8]}"
            return _json(
                {"output": {"task_id": task_id, "task_status": "PENDING"}, "request_id": "r"}
            )
        if path == "/tasks":
            # The list call is garbage too, so the list watch meets the same answers.
            return ANSWERS["deep"](self.base, 0)
        if path.startswith("/tasks/"):
            task_id = path.removeprefix("/tasks/")
            with self.lock:
                seen = self.queries[task_id]
                self.queries[task_id] += 1
            return ANSWERS[task_id.rsplit("-", 1)[0]](self.base, seen)
        return _json({"code": "NotFound", "message": path}, 404)

    def start(self) -> RogueProvider:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def rogue() -> Iterator[RogueProvider]:
    server = RogueProvider().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def rogue_stack(
    redis_url: str,
    s3_server: dict[str, str],
    run_id: str,
    rogue: RogueProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Worker, ProducerContext]]:
    tag = f"wanedit-rogue-{run_id}"
    env = {
        **s3_server,
        "WANEDIT_REDIS_URL": redis_url,
        "WANEDIT_KEY_PREFIX": tag,
        "WANEDIT_QUEUE": tag,
        "WANEDIT_EVENTS_STREAM": f"{tag}:events",
        "WANEDIT_OUTPUT_URI": f"s3://{tag}/out/",
        "WANEDIT_ALLOW_PRIVATE_URLS": "true",
        "DASHSCOPE_API_KEY": SANDBOX_KEY,
        "DASHSCOPE_HTTP_BASE_URL": rogue.base_url,
        "WANEDIT_CONCURRENCY": "20",
        "WANEDIT_SUBMIT_RATE": "50",
        "WANEDIT_POLL_FIRST_DELAY": "0.5",
        "WANEDIT_POLL_INTERVAL": "0.5",
        "WANEDIT_POLL_MAX_INTERVAL": "1",
        "WANEDIT_POLL_DEADLINE": "6",
        "WANEDIT_RETRY_BASE": "0.2",
        "WANEDIT_RETRY_CAP": "1",
        "WANEDIT_RETRY_MAX": "2",
    }
    with patched_env(env):
        boto3.client("s3").create_bucket(Bucket=tag)
        log = tmp_path_factory.mktemp("rogue") / "worker.log"
        worker = Worker(env, concurrency=2, log_path=log, cwd=Path(__file__).parents[2]).start()
        try:
            yield worker, build_context(Settings())
        finally:
            worker.stop()
            print(worker.tail(60))


def test_garbage_answers_never_crash_the_worker_and_every_job_says_why(rogue_stack):
    worker, ctx = rogue_stack
    jobs = {
        kind: submit_edit(
            {"prompt": f"{kind} make it blue", "images": ["https://example.com/a.png"]},
            context=ctx,
        )
        for kind in ANSWERS
    }
    explained_while_waiting: set[str] = set()
    ended: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(ended) < len(jobs) and time.monotonic() < deadline:
        for kind, job_id in jobs.items():
            if kind in ended:
                continue
            job = get_job(job_id, context=ctx)
            if job["status"] in ("succeeded", "failed", "canceled"):
                ended[kind] = job
            elif job["last_error"]:
                assert job["last_error"]["code"] and job["last_error"]["message"]
                explained_while_waiting.add(kind)
        time.sleep(0.2)

    assert worker.process is not None and worker.process.poll() is None, worker.tail()
    log = worker.log_path.read_text(errors="replace") if worker.log_path else ""
    assert "raised unexpected" not in log, worker.tail(80)
    assert "Traceback" not in log, worker.tail(80)
    assert set(ended) == set(jobs), {k: get_job(v, context=ctx) for k, v in jobs.items()}

    for kind, (status, code, fragment) in EXPECTED.items():
        job = ended[kind]
        assert job["status"] == status, (kind, job["error"])
        if code is None:
            assert job["error"] is None
            assert job["last_error"] is None, (kind, job["last_error"])
            continue
        assert job["error"]["code"] == code, (kind, job["error"])
        assert fragment in job["error"]["message"], (kind, job["error"])
    # Retried answers were explained in the record while the job waited.
    assert explained_while_waiting >= {"html", "text", "missing", "huge", "deep"}, (
        explained_while_waiting
    )
