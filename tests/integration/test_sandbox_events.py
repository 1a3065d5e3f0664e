"""The sandbox publishes a task-end event (EventBridge's HTTP target) to a real receiver.

A tiny ``http.server`` receiver on a free port records every POST. Tests on the wall clock use
short tasks; tests on a fake clock move it and let the sandbox's scheduler notice (nobody queries
the tasks, so the events must go out on their own).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.contract.fixtures import load
from tests.contract.shapes import assert_same_shape
from tests.integration.test_sandbox_http import edit_body, headers, query, submit
from wanedit.sandbox.server import SandboxConfig, SandboxServer

pytestmark = pytest.mark.integration

KEY = "sk-sandbox"
BEIJING = timezone(timedelta(hours=8))
UNIQUE_KEY = "apikey:v1:aigc:image2image:image-synthesis:wan2.5-i2i-preview"
WAIT = 15.0


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    event: dict[str, Any]


@dataclass
class Receiver:
    """Answers each POST with the next of ``statuses`` (then 200); ``hold`` keeps answers back
    until it is set."""

    statuses: list[int] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    url: str = ""
    hold: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [post.event for post in self.posts]


@contextmanager
def receiver(statuses: list[int] | None = None, hold: bool = False) -> Iterator[Receiver]:
    got = Receiver(statuses=list(statuses or []), hold=threading.Event() if hold else None)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if got.hold is not None:
                got.holding.set()
                got.hold.wait(WAIT)
            with got.lock:
                got.posts.append(
                    Post(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(body)
                    )
                )
                status = got.statuses.pop(0) if got.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/events?token=rcv-t0ken"
    try:
        yield got
    finally:
        if got.hold is not None:
            got.hold.set()
        server.shutdown()
        server.server_close()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


StartSandbox = Callable[..., SandboxServer]


@pytest.fixture
def start_sandbox() -> Iterator[StartSandbox]:
    started: list[SandboxServer] = []

    def start(clock: Callable[[], float] = time.time, **config: Any) -> SandboxServer:
        settings = {"port": 0, "seed": 3, "duration_min": 0.2, "duration_max": 0.3, **config}
        server = SandboxServer(SandboxConfig(**settings), clock=clock).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def until(check: Callable[[], Any], what: str) -> Any:
    """Wait for ``check()`` to be truthy (at most WAIT seconds) and return it."""
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def stats(srv: SandboxServer) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(srv.host_url + "/sandbox/stats", timeout=5).json()
    return body


def records(srv: SandboxServer) -> list[dict[str, Any]]:
    answer = requests.get(srv.host_url + "/sandbox/events", timeout=5)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["events"]
    return rows


def settled(srv: SandboxServer, count: int) -> list[dict[str, Any]]:
    """The event records once ``count`` of them exist and none is still scheduled."""
    return until(  # type: ignore[no-any-return]
        lambda: (
            (rows := records(srv))
            and len(rows) >= count
            and all(r["status"] != "scheduled" for r in rows)
            and rows
        ),
        f"{count} settled events",
    )


def beijing(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).timestamp()


def event_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sandbox-events")]


def test_an_ended_task_publishes_one_event_of_the_documented_shape(
    start_sandbox: StartSandbox,
) -> None:
    with receiver() as got:
        srv = start_sandbox(event_url=got.url, event_headers={"Authorization": "Bearer rcv-secret"})
        created = requests.post(
            srv.base_url + "/services/aigc/image2image/image-synthesis",
            json=edit_body(),
            headers=headers(),
            timeout=10,
        )
        task_id = created.json()["output"]["task_id"]
        # Nobody queries the task: the event goes out on its own at the task's end.
        (event,) = until(got.events, "the event")
        rows = settled(srv, 1)
        assert len(got.events()) == 1 and len(rows) == 1
        post = got.posts[0]

    assert_same_shape(load("event_async_task_finish").body, event, where="event")
    assert post.path == "/events?token=rcv-t0ken"
    assert post.headers["authorization"] == "Bearer rcv-secret"
    assert post.headers["content-type"].startswith("application/json")
    assert (event["source"], event["type"]) == ("acs.dashscope", "dashscope:System:AsyncTaskFinish")
    assert (event["specversion"], event["aliyuneventbusname"]) == ("1.0", "default")
    assert event["datacontenttype"].startswith("application/json")
    data = event["data"]
    assert data["task_id"] == task_id and data["task_status"] == "SUCCEEDED"
    assert data["request_id"] == created.json()["request_id"]
    assert data["user_api_unique_key"] == UNIQUE_KEY and data["contain_result"] is False
    assert data["region"] == event["aliyunregionid"] == "ap-southeast-1"

    output = query(srv, task_id)["output"]
    # Beijing-time strings to the second: the query's times with the milliseconds cut.
    assert data["start_time"] == output["scheduled_time"][:19]
    assert data["end_time"] == output["end_time"][:19]
    row = requests.get(srv.base_url + "/tasks", headers=headers(), timeout=5).json()["data"][0]
    assert (data["api_key_id"], event["aliyunaccountid"]) == (
        row["api_key_id"],
        row["caller_parent_id"],
    )
    # The envelope is UTC; it was published at or after the end, and the record agrees.
    published = datetime.fromisoformat(event["aliyunpublishtime"].replace("Z", "+00:00"))
    happened = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    assert int(happened.timestamp()) == int(beijing(data["end_time"]))
    assert published >= happened
    (record,) = rows
    assert (record["task_id"], record["status"], record["event_id"]) == (
        task_id,
        "sent",
        event["id"],
    )
    assert record["ended_at"] == pytest.approx(row["end_time"] / 1000, abs=0.001)
    assert record["sent_at"] >= record["ended_at"]
    counts = stats(srv)
    assert (counts["events_sent"], counts["events_lost"], counts["events_failed"]) == (1, 0, 0)
    assert "rcv-secret" not in json.dumps(event) and "rcv-t0ken" not in json.dumps(event)


def test_failed_and_canceled_tasks_publish_and_queued_tasks_publish_unqueried(
    start_sandbox: StartSandbox,
) -> None:
    clock = FakeClock(1_761_207_496.0)
    with receiver() as got:
        srv = start_sandbox(
            clock, event_url=got.url, concurrency=1, duration_min=60.0, duration_max=60.0
        )
        running = submit(srv, edit_body("[sandbox:fail] runs first"))
        queued = submit(srv, edit_body("waits for the slot"))
        doomed = submit(srv, edit_body("canceled while pending"))
        clock.now += 5
        canceled = requests.post(
            f"{srv.base_url}/tasks/{doomed}/cancel", headers=headers(), timeout=5
        )
        assert canceled.status_code == 200, canceled.text
        (cancel_event,) = until(got.events, "the cancel's event")
        # Two task lengths later, without a query: the first ends, the queued one runs and ends.
        clock.now += 125
        events = until(lambda: len(got.events()) == 3 and got.events(), "three events")

    by_task = {e["data"]["task_id"]: e["data"] for e in events}
    assert by_task[doomed]["task_status"] == "CANCELED"
    assert by_task[doomed]["start_time"] == by_task[doomed]["end_time"]
    assert beijing(by_task[doomed]["end_time"]) == int(1_761_207_501.0)
    assert by_task[running]["task_status"] == "FAILED"
    assert by_task[queued]["task_status"] == "SUCCEEDED"
    assert beijing(by_task[running]["end_time"]) == int(1_761_207_496.0 + 60)
    assert by_task[queued]["start_time"] == by_task[running]["end_time"]
    assert beijing(by_task[queued]["end_time"]) == int(1_761_207_496.0 + 120)
    assert cancel_event["data"]["task_id"] == doomed


def test_loss_rate_one_sends_nothing_and_counts_it(start_sandbox: StartSandbox) -> None:
    with receiver() as got:
        srv = start_sandbox(event_url=got.url, event_loss_rate=1.0)
        for _ in range(3):
            submit(srv)
        rows = settled(srv, 3)
        assert got.events() == []
    assert [r["status"] for r in rows] == ["lost"] * 3
    assert all(r["sent_at"] is None for r in rows)
    counts = stats(srv)
    assert (counts["events_lost"], counts["events_sent"]) == (3, 0)


def test_dup_rate_one_sends_each_event_twice_with_one_id(start_sandbox: StartSandbox) -> None:
    with receiver() as got:
        srv = start_sandbox(event_url=got.url, event_dup_rate=1.0)
        task_id = submit(srv)
        first, second = until(lambda: len(got.events()) == 2 and got.events(), "two copies")
        rows = settled(srv, 2)
    assert first == second and first["data"]["task_id"] == task_id
    assert [r["duplicate"] for r in rows] == [False, True]
    assert {r["event_id"] for r in rows} == {first["id"]}
    counts = stats(srv)
    assert (counts["events_sent"], counts["events_duplicated"]) == (2, 1)


def test_a_receiver_answering_500_gets_the_event_again(start_sandbox: StartSandbox) -> None:
    with receiver(statuses=[500]) as got:
        srv = start_sandbox(event_url=got.url)
        submit(srv)
        first, second = until(lambda: len(got.events()) == 2 and got.events(), "a retry")
        (row,) = settled(srv, 1)
    assert first["id"] == second["id"]
    assert (row["status"], row["attempts"]) == ("sent", 2)
    counts = stats(srv)
    assert (counts["events_sent"], counts["events_failed"]) == (1, 0)


def test_a_receiver_that_is_down_is_retried_then_counted_failed(
    start_sandbox: StartSandbox,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    srv = start_sandbox(event_url=f"http://127.0.0.1:{port}/events")
    task_id = submit(srv)
    (row,) = settled(srv, 1)
    assert (row["task_id"], row["status"], row["attempts"]) == (task_id, "failed", 4)
    assert stats(srv)["events_failed"] == 1
    assert query(srv, task_id)["output"]["task_status"] == "SUCCEEDED"


def test_a_receiver_that_hangs_holds_up_no_api_answer(start_sandbox: StartSandbox) -> None:
    with receiver(hold=True) as got:
        srv = start_sandbox(
            event_url=got.url, duration_min=0.0, duration_max=0.0, submit_rate=100.0
        )
        submit(srv)
        until(got.holding.is_set, "the receiver to hold a POST")
        assert got.hold is not None
        # While that POST waits for its answer, the API answers creates and queries.
        for _ in range(5):
            task_id = submit(srv)
            assert query(srv, task_id)["output"]["task_status"] == "SUCCEEDED"
        assert not got.hold.is_set() and got.posts == []
        got.hold.set()
        until(lambda: len(got.events()) == 6, "all six events")


def test_no_event_url_means_no_event_thread(start_sandbox: StartSandbox) -> None:
    before = event_threads()
    srv = start_sandbox(duration_min=0.0, duration_max=0.0)
    for _ in range(3):
        task_id = submit(srv)
        assert query(srv, task_id)["output"]["task_status"] == "SUCCEEDED"
    assert event_threads() == before
    assert records(srv) == []
    counts = stats(srv)
    assert [counts[k] for k in ("events_sent", "events_lost", "events_failed")] == [0, 0, 0]


def test_events_are_switched_on_at_runtime_and_stop_with_the_server(
    start_sandbox: StartSandbox,
) -> None:
    with receiver() as got:
        srv = start_sandbox()
        change = {"event_url": got.url, "event_headers": {"Authorization": "Bearer x"}}
        answer = requests.post(srv.host_url + "/sandbox/config", json=change, timeout=5)
        assert answer.status_code == 200, answer.text
        shown = answer.json()
        # A receiver's token is never echoed back.
        assert shown["event_url"].endswith("/events?token=%2A%2A%2A")
        assert shown["event_headers"] == {"Authorization": "***"}
        submit(srv)
        until(got.events, "the event")
        assert any(name == "sandbox-events" for name in event_threads())
        srv.stop()
        assert "sandbox-events" not in event_threads()


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"event_url": "ftp://x/y"}, "event_url"),
        ({"event_delay": -1}, "event_delay"),
        ({"event_headers": ["Authorization"]}, "event_headers"),
        ({"event_dup_rate": 2}, "event_dup_rate"),
    ],
)
def test_a_bad_event_setting_is_refused_by_name(
    start_sandbox: StartSandbox, change: dict[str, Any], names: str
) -> None:
    srv = start_sandbox()
    answer = requests.post(srv.host_url + "/sandbox/config", json=change, timeout=5)
    assert answer.status_code == 400
    assert names in answer.json()["message"]
