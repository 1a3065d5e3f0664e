"""The provider client over real HTTP: the sandbox, and a server that misbehaves on purpose."""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.conftest import make_image
from tests.receiver import GARBLED_BODIES, hang_up_mid_body, raw_server, stream_body
from wanedit.errors import (
    MalformedResponse,
    OutcomeUnknown,
    ProviderError,
    TerminalProviderError,
    TransientProviderError,
)
from wanedit.images import encode_data_uri
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.workers.client import MAX_BODY, ProviderClient, make_session

pytestmark = pytest.mark.integration
MODEL = "wan2.5-i2i-preview"
IMAGE = encode_data_uri(make_image(512, 512, (10, 200, 90)), "image/png")


def payload(prompt: str = "make it blue", n: int = 1) -> dict:
    return {"input": {"prompt": prompt, "images": [IMAGE]}, "parameters": {"n": n}}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(api_keys=("sk-a",), duration_min=0.2, duration_max=0.4, submit_rate=5)
    ).start()
    yield server
    server.stop()


def client(base_url: str, key: str = "sk-a", read_timeout: float = 5.0) -> ProviderClient:
    return ProviderClient(
        make_session(), base_url, key, connect_timeout=1, read_timeout=read_timeout
    )


def test_create_get_until_succeeded(sandbox):
    provider = client(sandbox.base_url)
    task_id, request_id = provider.create(MODEL, payload(n=2))
    assert task_id and request_id
    deadline = time.monotonic() + 10
    state = provider.get(task_id)
    while state.status in ("PENDING", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.1)
        state = provider.get(task_id)
    assert state.status == "SUCCEEDED"
    assert len(state.results) == 2
    assert all(item.url for item in state.results)
    assert state.image_count == 2
    assert {"submit_time", "end_time"} <= set(state.times)


def test_wrong_key_is_terminal(sandbox):
    with pytest.raises(TerminalProviderError) as raised:
        client(sandbox.base_url, key="sk-wrong").create(MODEL, payload())
    assert (raised.value.http_status, raised.value.code) == (401, "InvalidApiKey")
    assert "sk-wrong" not in str(raised.value)


def test_provider_validation_error_is_terminal(sandbox):
    bad = {"input": {"prompt": "x", "images": [IMAGE]}, "parameters": {"n": 9}}
    with pytest.raises(TerminalProviderError) as raised:
        client(sandbox.base_url).create(MODEL, bad)
    assert raised.value.code == "InvalidParameter"


def test_unknown_task_id_answers_unknown(sandbox):
    assert client(sandbox.base_url).get("no-such-task").status == "UNKNOWN"


def test_burst_of_creates_is_throttled_and_retryable(sandbox):
    provider = client(sandbox.base_url)
    errors = []
    for _ in range(12):
        try:
            provider.create(MODEL, payload())
        except TransientProviderError as exc:
            errors.append(exc)
    assert errors, "12 creates in an instant must trip a 5/s limit"
    assert all(exc.throttled and exc.http_status == 429 for exc in errors)
    assert errors[0].code.startswith("Throttling")


# A server that answers however a test tells it to.
Handler = Callable[[Request], Response]


@pytest.fixture
def rogue() -> Iterator[Callable[[Handler], str]]:
    servers = []

    def start(handler: Handler) -> str:
        server = make_server("127.0.0.1", 0, Request.application(handler), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/api/v1"

    yield start
    for server in servers:
        server.shutdown()


def test_a_key_echoed_by_the_server_is_redacted(rogue):
    def echo(request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        if request.path.endswith("/tasks/t1"):
            body = {
                "output": {"task_id": "t1", "task_status": "FAILED", "code": "X", "message": auth}
            }
            return Response(json.dumps(body), 200, mimetype="application/json")
        body = {"code": "InvalidApiKey", "message": f"Invalid API-key provided: {auth}"}
        return Response(json.dumps(body), 401, mimetype="application/json")

    base = rogue(echo)
    with pytest.raises(TerminalProviderError) as raised:
        client(base, key="sk-echoed-secret").create(MODEL, payload())
    assert raised.value.message == "Invalid API-key provided: Bearer ***"
    assert "sk-echoed-secret" not in repr(raised.value) + str(raised.value)
    failed = client(base, key="sk-echoed-secret").get("t1")
    assert failed.message == "Bearer ***"


def test_html_error_page_is_code_unknown_and_retryable(rogue):
    base = rogue(lambda r: Response("<html>502 Bad Gateway</html>", 502, mimetype="text/html"))
    with pytest.raises(TransientProviderError) as raised:
        client(base).get("t1")
    assert (raised.value.code, raised.value.http_status) == ("Unknown", 502)


def test_non_json_error_with_4xx_is_terminal(rogue):
    base = rogue(lambda r: Response("nope", 400, mimetype="text/plain"))
    with pytest.raises(TerminalProviderError) as raised:
        client(base).get("t1")
    assert raised.value.code == "Unknown"


def test_flat_error_body_is_read(rogue):
    body = {"code": "Throttling.RateQuota", "message": "slow down", "request_id": "r9"}
    base = rogue(lambda r: Response(json.dumps(body), 429, mimetype="application/json"))
    with pytest.raises(TransientProviderError) as raised:
        client(base).get("t1")
    assert (raised.value.code, raised.value.request_id, raised.value.throttled) == (
        "Throttling.RateQuota",
        "r9",
        True,
    )


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        json.dumps({"output": {"task_status": "WHATEVER"}}),
        json.dumps({"output": {"task_status": "SUCCEEDED", "results": [{"nope": 1}]}}),
        json.dumps({"output": {"task_status": "RUNNING"}, "pad": "x" * (2 * 1024 * 1024)}),
    ],
)
def test_malformed_query_answers_are_transient(rogue, body):
    base = rogue(lambda r: Response(body, 200, mimetype="application/json"))
    with pytest.raises(MalformedResponse):
        client(base).get("t1")


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (200, "[" * 100_000 + "]" * 100_000, "is not JSON"),
        (200, json.dumps({"pad": "x" * (2 * 1024 * 1024)}), "is over 1048576 bytes"),
        (502, "<html>" + "x" * (2 * 1024 * 1024) + "</html>", "is over 1048576 bytes"),
    ],
)
def test_deep_and_huge_answers_are_named_for_what_they_are(rogue, status, body, problem):
    base = rogue(lambda r: Response(body, status, mimetype="application/json"))
    with pytest.raises(TransientProviderError) as raised:
        client(base).get("t1")
    assert problem in raised.value.message


def test_malformed_create_answer_is_outcome_unknown(rogue):
    base = rogue(lambda r: Response(json.dumps({"output": {}}), 200, mimetype="application/json"))
    with pytest.raises(OutcomeUnknown):
        client(base).create(MODEL, payload())


@pytest.fixture
def black_hole() -> Iterator[str]:
    """Accepts a request, reads it, then hangs up without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            connection.recv(65536)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1"
    stop.set()
    thread.join()
    listener.close()


def test_lost_create_answer_is_never_called_a_plain_retry(black_hole):
    with pytest.raises(OutcomeUnknown):
        client(black_hole).create(MODEL, payload())


def test_lost_query_answer_is_transient(black_hole):
    with pytest.raises(TransientProviderError) as raised:
        client(black_hole).get("t1")
    assert not isinstance(raised.value, OutcomeUnknown)


def test_refused_connection_is_transient_even_for_create():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientProviderError) as raised:
        client(f"http://127.0.0.1:{port}/api/v1").create(MODEL, payload())
    assert not isinstance(raised.value, OutcomeUnknown)


def test_slow_create_answer_is_outcome_unknown(rogue):
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response("{}", 200)

    with pytest.raises(OutcomeUnknown):
        client(rogue(slow), read_timeout=0.5).create(MODEL, payload())


@pytest.mark.parametrize(
    ("status", "body", "unknown"),
    [
        # A JSON error whose code refuses the request: no task was made.
        (400, {"code": "InvalidParameter", "message": "m"}, False),
        (400, {"code": "BadRequest.TooLarge", "message": "m"}, False),
        (401, {"code": "InvalidApiKey", "message": "m"}, False),
        (403, {"code": "AccessDenied", "message": "m"}, False),
        (429, {"code": "Throttling.RateQuota", "message": "m"}, False),
        (429, {"code": "Throttling.AllocationQuota", "message": "m"}, False),
        # A 5xx, a 408 and the timeout codes may come after the task was made.
        (500, {"code": "InternalError", "message": "m"}, True),
        (503, {"code": "ModelUnavailable", "message": "m"}, True),
        (504, {"code": "ModelServingError", "message": "m"}, True),
        (408, {"code": "RequestTimeOut", "message": "m"}, True),
        (400, {"code": "RequestTimeOut", "message": "m"}, True),
        (400, {"code": "RequestTimeout", "message": "m"}, True),
        (429, {"code": "Gateway.Timeout", "message": "m"}, True),
        (400, {"code": "InternalError.Unknown", "message": "m"}, True),
        # A body that is not a JSON error proves nothing, whatever the status.
        (502, "<html>502 Bad Gateway</html>", True),
        (403, "<html>denied by a proxy</html>", True),
        (400, {"message": "no code"}, True),
        (400, ["not", "an", "object"], True),
    ],
)
def test_only_a_refusal_in_words_proves_a_create_made_nothing(rogue, status, body, unknown):
    raw = body if isinstance(body, str) else json.dumps(body)
    base = rogue(lambda r: Response(raw, status, mimetype="application/json"))
    with pytest.raises(ProviderError) as raised:
        client(base).create(MODEL, payload())
    assert isinstance(raised.value, OutcomeUnknown) is unknown
    assert raised.value.http_status == status


def test_a_connection_reset_after_the_request_was_sent_leaves_a_create_unknown():
    """The server reads the whole request, then resets the connection (RST, not FIN)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        time.sleep(0.1)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(OutcomeUnknown):
            client(f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1").create(MODEL, payload())
    finally:
        thread.join(5)
        listener.close()


class ListProvider:
    """A task list as documented: pages of `page_size` rows in a shuffled order, filtered by a
    Beijing-time window of at most 24 h (a longer one is refused)."""

    def __init__(self, submitted: list[float]) -> None:
        order = list(range(len(submitted)))
        random.Random(7).shuffle(order)
        self.rows = [
            {"task_id": f"t{i}", "status": "RUNNING", "gmt_create": int(submitted[i] * 1000)}
            for i in order
        ]
        self.asked: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        args = dict(request.args)
        self.asked.append(args)
        low, high = (beijing_filter(args[name]) for name in ("start_time", "end_time"))
        if high - low > 24 * 3600:
            body = {"code": "InvalidParameter", "message": "window over 24 h", "request_id": "x"}
            return Response(json.dumps(body), 400, mimetype="application/json")
        rows = [row for row in self.rows if low <= row["gmt_create"] / 1000 <= high]
        page_no, size = int(args["page_no"]), int(args["page_size"])
        answer = {
            "request_id": "r",
            "total": len(rows),
            "total_page": (len(rows) + size - 1) // size,
            "page_no": page_no,
            "page_size": size,
            "data": rows[(page_no - 1) * size : page_no * size],
        }
        return Response(json.dumps(answer), 200, mimetype="application/json")


def beijing_filter(text: str) -> float:
    moment = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return moment.timestamp() - 8 * 3600


def test_a_list_window_is_walked_page_by_page_in_24_hour_windows(rogue):
    day = 1_780_000_000.0
    submitted = [day + i * 1800.0 for i in range(100)]  # 50 h of tasks, every 30 min
    provider = ListProvider(submitted)
    paced: list[int] = []
    rows = client(rogue(provider)).list_window(
        MODEL, day + 3600, day + 49 * 3600, pace=lambda: paced.append(1), page_size=7
    )
    expected = {f"t{i}" for i, moment in enumerate(submitted) if 3600 <= moment - day <= 49 * 3600}
    assert sorted(row.task_id for row in rows) == sorted(expected)
    assert len(rows) == len(expected)
    windows = {(a["start_time"], a["end_time"]) for a in provider.asked}
    assert len(windows) == 3  # 48 h in windows of at most 24 h
    assert all(a["page_size"] == "7" for a in provider.asked)
    assert len(paced) == len(provider.asked) - 1  # every call but the first waits its turn
    first = min(beijing_filter(start) for start, _ in windows)
    assert first == day + 3600  # in Beijing time, to the second


def test_a_list_window_over_24_hours_is_never_sent_as_one(rogue):
    with pytest.raises(ValueError, match="24 h"):
        client(rogue(ListProvider([]))).list_page(MODEL, 0.0, 24 * 3600 + 1.0)


def test_a_list_too_long_to_walk_is_an_error_never_a_partial_answer(rogue):
    def endless(request: Request) -> Response:
        page_no = int(request.args["page_no"])
        row = {"task_id": f"t{page_no}", "status": "RUNNING", "gmt_create": 1_780_000_000_000}
        body = {
            "request_id": "r",
            "total": 10_000,
            "total_page": 10_000,
            "page_no": page_no,
            "page_size": 1,
            "data": [row],
        }
        return Response(json.dumps(body), 200, mimetype="application/json")

    with pytest.raises(TransientProviderError) as raised:
        client(rogue(endless)).list_window(MODEL, 1_780_000_000.0, 1_780_000_060.0)
    assert raised.value.code == "ListTooLong"


def _pages(rows: int, size: int, serve: Callable[[int, int], list[dict]]) -> Handler:
    """A list whose `serve(page_no, size)` decides which rows each page holds."""

    def answer(request: Request) -> Response:
        page_no = int(request.args["page_no"])
        body = {
            "request_id": "r",
            "total": rows,
            "total_page": (rows + size - 1) // size,
            "page_no": page_no,
            "page_size": size,
            "data": serve(page_no, size),
        }
        return Response(json.dumps(body), 200, mimetype="application/json")

    return answer


def _row(index: int) -> dict:
    return {"task_id": f"t{index}", "status": "RUNNING", "gmt_create": 1_780_000_000_000}


@pytest.mark.parametrize(
    ("serve", "why"),
    [
        # page 2 of 3 comes back empty
        (lambda p, s: [] if p == 2 else [_row(i) for i in range((p - 1) * s, p * s)], "empty"),
        # every page is silently capped at 10 rows
        (lambda p, s: [_row(i) for i in range((p - 1) * s, (p - 1) * s + 10)], "distinct"),
        # page_no is ignored: page 1 every time
        (lambda p, s: [_row(i) for i in range(s)], "distinct"),
    ],
)
def test_a_list_read_in_part_is_an_error_never_a_partial_answer(rogue, serve, why):
    with pytest.raises(TransientProviderError) as raised:
        client(rogue(_pages(250, 100, serve))).list_window(MODEL, 1_780_000_000.0, 1_780_000_060.0)
    assert raised.value.code == "ListIncomplete"
    assert why in raised.value.message


@pytest.mark.parametrize(
    ("body", "canceled"),
    [
        ({"request_id": "r"}, True),
        ({"request_id": "r", "output": {"task_id": "t", "task_status": "CANCELED"}}, True),
        # a 200 that says anything else is not taken for a cancel
        ({"request_id": "r", "output": {"task_id": "t", "task_status": "RUNNING"}}, False),
        ({"request_id": "r", "code": "UnsupportedOperation", "message": "m"}, False),
        (["not", "an", "object"], False),
    ],
)
def test_only_a_clean_200_is_a_cancel(rogue, body, canceled):
    base = rogue(lambda r: Response(json.dumps(body), 200, mimetype="application/json"))
    if canceled:
        client(base).cancel("t")
    else:
        with pytest.raises(MalformedResponse):
            client(base).cancel("t")


CALLS = {
    "get": lambda c: c.get("t1"),
    "list": lambda c: c.list_page(MODEL, 1_780_000_000.0, 1_780_000_060.0),
    "cancel": lambda c: c.cancel("t1"),
}


@pytest.mark.parametrize("how", GARBLED_BODIES)
def test_a_create_answer_cut_short_stalled_or_reset_is_outcome_unknown(how):
    """The request was sent and answered in part: the task may exist."""
    with (
        raw_server(hang_up_mid_body(how, b'{"output": {"task_id": "t')) as server,
        pytest.raises(OutcomeUnknown) as raised,
    ):
        client(f"{server.url}/api/v1", read_timeout=0.5).create(MODEL, payload())
    assert raised.value.code == "OutcomeUnknown"


@pytest.mark.parametrize("how", GARBLED_BODIES)
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_query_answer_cut_short_stalled_or_reset_is_transient(how, call):
    with (
        raw_server(hang_up_mid_body(how, b'{"output": {"task_status": "RUN')) as server,
        pytest.raises(TransientProviderError) as raised,
    ):
        CALLS[call](client(f"{server.url}/api/v1", read_timeout=0.5))
    assert not isinstance(raised.value, OutcomeUnknown)
    assert raised.value.code == "ConnectionError"


@pytest.mark.parametrize("status", [200, 500])
def test_a_provider_answer_is_read_no_further_than_its_cap(status):
    """400 MiB generated as it is sent: the client reads MAX_BODY + 1 bytes and hangs up."""
    total = 400 * 1024 * 1024
    answer = lambda c, s: stream_body(c, s, b"[", total, status=status)  # noqa: E731
    with raw_server(answer) as server, pytest.raises(ProviderError) as raised:
        client(f"{server.url}/api/v1").get("t1")
    assert f"is over {MAX_BODY} bytes" in raised.value.message
    [sent] = server.sent
    assert sent < MAX_BODY + 32 * 1024 * 1024 < total
