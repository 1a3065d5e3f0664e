"""A real webhook receiver for the tests: a threaded http.server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Answers each POST with the next status in `statuses` (then 200) and keeps what came."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            self.received.append(Received(body, headers))
            return self.statuses.pop(0) if self.statuses else 200


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(statuses=list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = receiver.answer(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/wanedit"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Probe:
    """An internal service an attacker would like a worker to reach: it keeps every request."""

    host: str = "127.0.0.1"
    port: int = 0
    hits: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def probe_server(
    host: str = "127.0.0.1", port: int = 0, body: bytes = b"internal"
) -> Iterator[Probe]:
    """A threaded HTTP server that records each GET or POST (method, path, headers) and answers
    200 with `body`."""
    probe = Probe(host=host)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length", 0) or 0)
            if length:
                self.rfile.read(length)
            probe.hits.append(
                (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            )
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    probe.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class RawServer:
    """A one-thread-per-connection TCP server whose answers are written by hand."""

    url: str = ""
    sent: list[int] = field(default_factory=list)  # body bytes written, per connection
    requests: int = 0


def _read_request(connection: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        more = connection.recv(65536)
        if not more:
            return
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        more = connection.recv(65536)
        if not more:
            return
        body += more


@contextmanager
def raw_server(answer: Callable[[socket.socket, RawServer], None]) -> Iterator[RawServer]:
    """Reads each request whole, then lets `answer(connection, server)` write whatever it likes
    (a body cut short, a stall, a reset, a huge stream). The connection is closed after."""
    server = RawServer()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def handle(connection: socket.socket) -> None:
        with connection:
            _read_request(connection)
            server.requests += 1
            with contextlib.suppress(OSError):
                answer(connection, server)

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            worker = threading.Thread(target=handle, args=(connection,), daemon=True)
            worker.start()
            workers.append(worker)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        yield server
    finally:
        stop.set()
        thread.join(5)
        for worker in workers:
            worker.join(10)
        listener.close()


def stream_body(
    connection: socket.socket,
    server: RawServer,
    head: bytes,
    total: int,
    *,
    status: int = 200,
    declare: bool = True,
) -> None:
    """Answer `status` with `head` and then zeros up to `total` bytes, generated as they are
    sent (with a Content-Length if `declare`, else until the connection closes); counts in
    `server.sent` the body bytes the peer took before it hung up."""
    chunk = bytes(1024 * 1024)
    sent = 0
    length = f"Content-Length: {total}" if declare else "Connection: close"
    connection.sendall(f"HTTP/1.1 {status} X\r\n{length}\r\n\r\n".encode())
    try:
        connection.sendall(head)
        sent = len(head)
        while sent < total:
            piece = chunk[: min(len(chunk), total - sent)]
            connection.sendall(piece)
            sent += len(piece)
    finally:
        server.sent.append(sent)


def hang_up_mid_body(how: str, head: bytes) -> Callable[[socket.socket, RawServer], None]:
    """An answer that promises more body than it sends: `truncated` closes (FIN), `reset`
    resets (RST), `stall` sends nothing more until the client hangs up, `bad-chunk` sends a
    chunked body whose next chunk size is not a number, `bad-gzip` a body that says gzip and
    is not."""

    def answer(connection: socket.socket, server: RawServer) -> None:
        if how == "bad-gzip":
            garbage = b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                + f"Content-Length: {len(garbage)}\r\n\r\n".encode()
                + garbage
            )
            return
        if how == "bad-chunk":
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + f"{len(head):x}\r\n".encode()
                + head
                + b"\r\nzz\r\n"
            )
            return
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(head) + 100_000}\r\n\r\n".encode()
            + head
        )
        if how == "stall":
            connection.settimeout(30)
            connection.recv(1)  # returns when the client gives up and closes
        elif how == "reset":
            time.sleep(0.05)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return answer


BROKEN_BODIES = ("truncated", "reset", "stall", "bad-chunk")
# S3 bodies are not decoded by the client, so a garbled encoding only breaks HTTP downloads.
GARBLED_BODIES = (*BROKEN_BODIES, "bad-gzip")


def rebinding(first: str, then: str, calls: list[str]) -> Callable[..., list[tuple]]:
    """A DNS server that answers `first` once and `then` ever after (DNS rebinding)."""

    def resolve(host: str, port: int, **_: object) -> list[tuple]:
        address = then if calls else first
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve
