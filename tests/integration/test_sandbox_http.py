"""The sandbox over real HTTP, as a client of the DashScope API sees it."""

from __future__ import annotations

import base64
import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from PIL import Image
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.contract.fixtures import LIST_ROW_KEYS
from wanedit.sandbox.server import SandboxConfig, SandboxServer

pytestmark = pytest.mark.integration

KEY = "sk-sandbox"
CREATE = "/services/aigc/image2image/image-synthesis"
FAST = {"duration_min": 0.1, "duration_max": 0.2}


def jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(out, format="JPEG")
    return out.getvalue()


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.fixture
def image_url() -> Iterator[str]:
    """A local HTTP server standing in for a presigned storage URL."""
    body = jpeg((900, 600))

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        found = request.path == "/bucket/in.jpg"
        response = Response(body if found else b"", status=200 if found else 404)
        return response(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/bucket/in.jpg?X-Amz-Signature=abc"
    server.shutdown()
    server.server_close()


StartSandbox = Callable[..., SandboxServer]


@pytest.fixture
def start_sandbox() -> Iterator[StartSandbox]:
    """Start sandboxes on free ports; all are stopped after the test."""
    started: list[SandboxServer] = []

    def start(clock: Callable[[], float] | None = None, **config: Any) -> SandboxServer:
        settings = {"port": 0, "seed": 7, **FAST, **config}
        server = SandboxServer(SandboxConfig(**settings), clock=clock or time.time).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sandbox(start_sandbox: StartSandbox) -> SandboxServer:
    return start_sandbox()


def headers(key: str = KEY, async_call: bool = True) -> dict[str, str]:
    result = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if async_call:
        result["X-DashScope-Async"] = "enable"
    return result


def edit_body(
    prompt: str = "add a red balloon", images: list[str] | None = None, **params: Any
) -> dict[str, Any]:
    return {
        "model": "wan2.5-i2i-preview",
        "input": {"prompt": prompt, "images": images or [data_uri(jpeg())]},
        "parameters": {"n": 1, "size": "1024*768", **params},
    }


def create(srv: SandboxServer, body: dict[str, Any] | None = None) -> requests.Response:
    return requests.post(srv.base_url + CREATE, json=body or edit_body(), headers=headers())


def query(srv: SandboxServer, task_id: str, key: str = KEY) -> dict[str, Any]:
    response = requests.get(f"{srv.base_url}/tasks/{task_id}", headers=headers(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait(srv: SandboxServer, task_id: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = query(srv, task_id)
        if body["output"]["task_status"] not in ("PENDING", "RUNNING"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def submit(srv: SandboxServer, body: dict[str, Any] | None = None) -> str:
    response = create(srv, body)
    assert response.status_code == 200, response.text
    return str(response.json()["output"]["task_id"])


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "request_id"}
    assert body["code"] == code
    uuid.UUID(body["request_id"])
    return body


def test_full_flow_from_a_url_to_a_downloaded_png(sandbox: SandboxServer, image_url: str) -> None:
    response = create(sandbox, edit_body(images=[image_url], n=2, seed=5))
    assert response.status_code == 200
    created = response.json()
    assert created["output"]["task_status"] == "PENDING"
    uuid.UUID(created["request_id"])
    answer = wait(sandbox, created["output"]["task_id"])
    output = answer["output"]
    assert output["task_status"] == "SUCCEEDED"
    assert {"submit_time", "scheduled_time", "end_time"} <= set(output)
    assert output["task_metrics"] == {"TOTAL": 2, "SUCCEEDED": 2, "FAILED": 0}
    assert answer["usage"] == {"image_count": 2}
    urls = [r["url"] for r in output["results"]]
    assert urls[0].startswith(sandbox.host_url + "/results/")
    pngs = [requests.get(url) for url in urls]
    assert all(p.status_code == 200 and p.headers["Content-Type"] == "image/png" for p in pngs)
    images = [Image.open(io.BytesIO(p.content)) for p in pngs]
    assert [(i.format, i.mode, i.size) for i in images] == [("PNG", "RGB", (1024, 768))] * 2
    assert pngs[0].content != pngs[1].content  # seed and seed+1 differ
    stats = sandbox.stats()
    assert (stats["creates"], stats["downloads"]) == (1, 2)
    assert stats["tasks_by_status"]["SUCCEEDED"] == 1


@pytest.mark.parametrize("authorization", [None, "Bearer sk-wrong", "sk-sandbox"])
def test_missing_or_unknown_keys_are_refused(
    sandbox: SandboxServer, authorization: str | None
) -> None:
    extra = {"Authorization": authorization} if authorization else {}
    for response in (
        requests.post(
            sandbox.base_url + CREATE,
            json=edit_body(),
            headers={"X-DashScope-Async": "enable", **extra},
        ),
        requests.get(f"{sandbox.base_url}/tasks/{uuid.uuid4()}", headers=extra),
    ):
        body = assert_error(response, 401, "InvalidApiKey")
        assert body["message"] == "Invalid API-key provided."


def test_create_without_async_header_is_denied(sandbox: SandboxServer) -> None:
    response = requests.post(
        sandbox.base_url + CREATE, json=edit_body(), headers=headers(async_call=False)
    )
    body = assert_error(response, 403, "AccessDenied")
    assert body["message"] == "current user api does not support synchronous calls"


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        (b"not json", 400, "InvalidParameter", "JSON"),
        (edit_body(prompt=""), 400, "InvalidParameter", "input.prompt"),
        (edit_body(size="100*100"), 400, "InvalidParameter", "parameters.size"),
        (edit_body(n=9), 400, "InvalidParameter", "parameters.n"),
        ({**edit_body(), "model": "wan2.2-t2i-flash"}, 404, "ModelNotFound", ""),
        (edit_body(images=[data_uri(jpeg((200, 200)))]), 400, "InvalidParameter", "200x200"),
        (edit_body(images=["file:///tmp/x.png"]), 400, "InvalidURL", "input.images[0]"),
        (
            edit_body(images=["http://127.0.0.1:9/none.jpg"]),
            400,
            "InvalidParameter",
            "download the media resource timed out",
        ),
    ],
)
def test_invalid_creates(
    sandbox: SandboxServer, body: Any, status: int, code: str, fragment: str
) -> None:
    if isinstance(body, bytes):
        response = requests.post(sandbox.base_url + CREATE, data=body, headers=headers())
    else:
        response = create(sandbox, body)
    answer = assert_error(response, status, code)
    assert fragment.lower() in answer["message"].lower()
    assert sandbox.stats()["creates"] == 0


def test_a_burst_of_creates_in_one_instant_is_throttled(start_sandbox: StartSandbox) -> None:
    frozen = time.time()
    srv = start_sandbox(clock=lambda: frozen)
    statuses = [create(srv).status_code for _ in range(10)]
    assert statuses == [200] * 5 + [429] * 5
    answer = assert_error(create(srv), 429, "Throttling.RateQuota")
    assert answer["message"] == "Requests rate limit exceeded, please try again later."
    stats = srv.stats()
    assert (stats["creates"], stats["create_requests"], stats["throttled"]) == (5, 11, 6)


def test_queries_over_the_rate_are_throttled(start_sandbox: StartSandbox) -> None:
    frozen = time.time()
    srv = start_sandbox(clock=lambda: frozen, query_rate=3.0)
    url = f"{srv.base_url}/tasks/{uuid.uuid4()}"
    statuses = [requests.get(url, headers=headers()).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_concurrency_queues_tasks_in_fifo_order(start_sandbox: StartSandbox) -> None:
    srv = start_sandbox(concurrency=2, duration_min=0.3, duration_max=0.3, submit_rate=50.0)
    ids = [submit(srv) for _ in range(4)]
    assert [query(srv, i)["output"]["task_status"] for i in ids] == [
        "RUNNING",
        "RUNNING",
        "PENDING",
        "PENDING",
    ]
    ends = [wait(srv, i)["output"] for i in ids]
    assert ends[2]["scheduled_time"] == ends[0]["end_time"]
    assert ends[3]["scheduled_time"] == ends[1]["end_time"]
    assert srv.stats()["max_running"] == 2


def test_partial_failure(sandbox: SandboxServer) -> None:
    answer = wait(sandbox, submit(sandbox, edit_body("x [sandbox:partial]", n=3)))
    output = answer["output"]
    assert output["task_status"] == "SUCCEEDED"
    assert output["task_metrics"] == {"TOTAL": 3, "SUCCEEDED": 2, "FAILED": 1}
    assert answer["usage"] == {"image_count": 2}
    assert set(output["results"][2]) == {"code", "message"}
    assert all("url" in r for r in output["results"][:2])


@pytest.mark.parametrize(
    ("trigger", "code"),
    [("[sandbox:fail]", "InternalError.Algo"), ("[sandbox:output-fail]", "DataInspectionFailed")],
)
def test_failed_tasks(sandbox: SandboxServer, trigger: str, code: str) -> None:
    answer = wait(sandbox, submit(sandbox, edit_body(f"x {trigger}")))
    assert answer["output"]["task_status"] == "FAILED"
    assert answer["output"]["code"] == code
    assert answer["output"]["message"]
    assert "usage" not in answer and "results" not in answer["output"]


def test_input_moderation_refuses_the_create(sandbox: SandboxServer) -> None:
    response = create(sandbox, edit_body("x [sandbox:moderation]"))
    body = assert_error(response, 400, "DataInspectionFailed")
    assert body["message"] == "Input data may contain inappropriate content."


def test_unknown_foreign_and_expired_tasks_answer_unknown(start_sandbox: StartSandbox) -> None:
    srv = start_sandbox(api_keys=(KEY, "sk-other"))
    mine = submit(srv)
    expired = submit(srv, edit_body("x [sandbox:expire]"))
    unknown = str(uuid.uuid4())
    for task_id, key in ((unknown, KEY), (mine, "sk-other"), (expired, KEY)):
        body = query(srv, task_id, key)
        assert set(body) == {"request_id", "output"}
        assert body["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}


def cancel(srv: SandboxServer, task_id: str, key: str = KEY) -> requests.Response:
    return requests.post(f"{srv.base_url}/tasks/{task_id}/cancel", headers=headers(key))


def test_cancel_a_pending_task(start_sandbox: StartSandbox) -> None:
    srv = start_sandbox(concurrency=1, duration_min=30, duration_max=30)
    running = submit(srv)
    pending = submit(srv)
    response = cancel(srv, pending)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["request_id"]
    uuid.UUID(body["request_id"])
    assert query(srv, pending)["output"]["task_status"] == "CANCELED"
    for task_id in (running, pending, str(uuid.uuid4())):
        refused = assert_error(cancel(srv, task_id), 400, "UnsupportedOperation")
        assert refused["message"] == (
            "Failed to cancel the task, please confirm if the task is in PENDING status."
        )
    stats = srv.stats()
    assert (stats["cancels"], stats["cancel_requests"]) == (1, 4)


def test_cancels_share_the_query_rate(start_sandbox: StartSandbox) -> None:
    frozen = time.time()
    srv = start_sandbox(clock=lambda: frozen, query_rate=3.0)
    task_id = str(uuid.uuid4())
    answers = [
        cancel(srv, task_id),
        requests.get(f"{srv.base_url}/tasks/{task_id}", headers=headers()),
        requests.get(f"{srv.base_url}/tasks", headers=headers()),
        cancel(srv, task_id),
    ]
    assert [a.status_code for a in answers] == [400, 200, 200, 429]
    assert_error(answers[-1], 429, "Throttling.RateQuota")
    assert srv.stats()["throttled"] == 1


ROW_KEYS = LIST_ROW_KEYS - {"start_time", "end_time"}


def list_tasks(srv: SandboxServer, path: str = "/tasks", key: str = KEY, **params: str) -> Any:
    response = requests.get(f"{srv.base_url}{path}", params=params, headers=headers(key))
    assert response.status_code == 200, response.text
    return response.json()


def test_list_tasks(start_sandbox: StartSandbox) -> None:
    srv = start_sandbox(concurrency=1, duration_min=30, duration_max=30)
    created = [create(srv).json() for _ in range(3)]
    ids = [c["output"]["task_id"] for c in created]
    body = list_tasks(srv, status="PENDING", page_no="1", page_size="10")
    assert list(body) == ["request_id", "total", "total_page", "page_no", "page_size", "data"]
    assert [row["task_id"] for row in body["data"]] == ids[:0:-1]
    row = body["data"][0]
    assert set(row) == ROW_KEYS  # PENDING: neither start_time nor end_time
    assert (row["status"], row["request_id"]) == ("PENDING", created[2]["request_id"])
    assert row["model_name"] == "wan2.5-i2i-preview"
    assert isinstance(row["gmt_create"], int)
    assert abs(row["gmt_create"] / 1000 - time.time()) < 60
    assert (body["total"], body["total_page"], body["page_no"], body["page_size"]) == (2, 1, 1, 10)
    every = list_tasks(srv, path="/tasks/")
    assert [row["task_id"] for row in every["data"]] == ids[::-1]
    assert set(every["data"][2]) == ROW_KEYS | {"start_time"}  # RUNNING
    assert every["data"][2]["status"] == "RUNNING"


def test_list_window_over_24_hours_is_refused(sandbox: SandboxServer) -> None:
    response = requests.get(
        f"{sandbox.base_url}/tasks",
        params={"start_time": "20251020000000", "end_time": "20251021000001"},
        headers=headers(),
    )
    assert_error(response, 400, "InvalidParameter")


def test_main_account_keys_share_the_list(start_sandbox: StartSandbox) -> None:
    srv = start_sandbox(api_keys=("sk-c",), main_accounts=(("sk-a", "sk-b"),))
    response = requests.post(srv.base_url + CREATE, json=edit_body(), headers=headers("sk-a"))
    task_id = response.json()["output"]["task_id"]
    assert [r["task_id"] for r in list_tasks(srv, key="sk-b")["data"]] == [task_id]
    assert list_tasks(srv, key="sk-c")["data"] == []
    assert query(srv, task_id, "sk-b")["output"]["task_id"] == task_id


def listed_request_ids(srv: SandboxServer) -> dict[str, str]:
    return {row["request_id"]: row["task_id"] for row in list_tasks(srv)["data"]}


def test_a_lost_504_answer_is_an_html_gateway_page(sandbox: SandboxServer) -> None:
    response = create(sandbox, edit_body("x [sandbox:lost-504]"))
    assert response.status_code == 504
    assert response.headers["Content-Type"].startswith("text/html")
    assert "X-Request-Id" not in response.headers
    assert "504 Gateway Time-out" in response.text
    with pytest.raises(ValueError):
        response.json()
    [task_id] = listed_request_ids(sandbox).values()
    assert wait(sandbox, task_id)["output"]["task_status"] == "SUCCEEDED"
    stats = sandbox.stats()
    assert (stats["creates"], stats["lost_answers"], stats["http_errors"]) == (1, 1, 0)


def test_a_dropped_answer_closes_the_connection_without_a_response(
    sandbox: SandboxServer,
) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.post(
            sandbox.base_url + CREATE,
            json=edit_body("x [sandbox:lost-drop]"),
            headers=headers(),
            timeout=10,
        )
    [task_id] = listed_request_ids(sandbox).values()
    assert wait(sandbox, task_id)["output"]["task_status"] == "SUCCEEDED"
    assert sandbox.stats()["lost_answers_by_mode"] == {"drop": 1}
    # The server goes on serving, over a new connection or a session's reused one.
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{sandbox.base_url}/tasks", headers=headers()).ok


def test_a_lost_500_answer_names_the_listed_request_id(sandbox: SandboxServer) -> None:
    body = assert_error(create(sandbox, edit_body("x [sandbox:lost-500]")), 500, "InternalError")
    assert list(listed_request_ids(sandbox)) == [body["request_id"]]


def test_a_late_answer_comes_after_the_delay(start_sandbox: StartSandbox) -> None:
    srv = start_sandbox(lost_answer_delay=1.0)
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            srv.base_url + CREATE,
            json=edit_body("x [sandbox:lost-late]"),
            headers=headers(),
            timeout=0.3,
        )
    assert len(listed_request_ids(srv)) == 1
    started = time.monotonic()
    late = create(srv, edit_body("y [sandbox:lost-late]"))
    assert time.monotonic() - started >= 1.0
    assert late.status_code == 200
    assert late.json()["request_id"] in listed_request_ids(srv)


def test_lost_answer_rate_and_modes_at_runtime(sandbox: SandboxServer) -> None:
    config_url = f"{sandbox.host_url}/sandbox/config"
    changed = requests.post(
        config_url, json={"lost_answer_rate": 1, "lost_answer_modes": ["504"]}
    ).json()
    assert (changed["lost_answer_rate"], changed["lost_answer_modes"]) == (1.0, ["504"])
    assert [create(sandbox).status_code for _ in range(2)] == [504, 504]
    bad = requests.post(config_url, json={"lost_answer_modes": "504,later"})
    assert_error(bad, 400, "InvalidParameter")
    requests.post(config_url, json={"lost_answer_rate": 0}).raise_for_status()
    assert create(sandbox).status_code == 200
    stats = requests.get(f"{sandbox.host_url}/sandbox/stats").json()
    assert (stats["creates"], stats["lost_answers"]) == (3, 2)


def test_negative_prompts_over_500_characters_are_truncated(sandbox: SandboxServer) -> None:
    body = edit_body()
    body["input"]["negative_prompt"] = "n" * 501
    assert create(sandbox, body).status_code == 200


def test_expired_or_forged_result_urls_are_refused(start_sandbox: StartSandbox) -> None:
    skipped = [0.0]  # seconds the sandbox's clock is ahead of the wall clock
    srv = start_sandbox(clock=lambda: time.time() + skipped[0], result_ttl=60.0)
    url = wait(srv, submit(srv))["output"]["results"][0]["url"]
    assert requests.get(url).status_code == 200
    forged = requests.get(url[:-4] + "0000")
    assert forged.status_code == 403
    skipped[0] = 62.0
    expired = requests.get(url)
    assert expired.status_code == 403
    assert expired.headers["Content-Type"].startswith("application/xml")
    assert "<Code>AccessDenied</Code>" in expired.text


def test_injected_http_errors_and_runtime_config(sandbox: SandboxServer) -> None:
    task_id = submit(sandbox)
    response = requests.post(f"{sandbox.host_url}/sandbox/config", json={"http_error_rate": 1})
    assert response.status_code == 200
    assert response.json()["http_error_rate"] == 1.0
    assert_error(create(sandbox), 500, "InternalError")
    failed = requests.get(f"{sandbox.base_url}/tasks/{task_id}", headers=headers())
    assert_error(failed, 500, "InternalError")
    bad = requests.post(f"{sandbox.host_url}/sandbox/config", json={"concurrency": 9})
    assert_error(bad, 400, "InvalidParameter")
    stats = requests.get(f"{sandbox.host_url}/sandbox/stats").json()
    assert (stats["http_errors"], stats["creates"], stats["queries"]) == (2, 1, 1)
    reset = requests.post(f"{sandbox.host_url}/sandbox/reset-stats").json()
    assert (reset["http_errors"], reset["create_requests"]) == (0, 0)


def test_unknown_paths_answer_json(sandbox: SandboxServer) -> None:
    response = requests.get(f"{sandbox.base_url}/nothing", headers=headers())
    assert_error(response, 404, "NotFound")
    wrong = requests.post(
        f"{sandbox.base_url}/services/aigc/text2image/image-synthesis",
        json=edit_body(),
        headers=headers(),
    )
    assert_error(wrong, 400, "InvalidParameter")
