"""The threaded HTTP server behind wanedit's receivers (`wanedit listen --http`,
`wanedit provider-events`): a thread per connection, one request per connection, an idle
timeout and a deadline on reading the request, a bound on connections served at once (503 above
it) and a body cap (413, never read whole).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

# A receiver serves each connection in a thread of its own, one request per
# connection. A connection that sends nothing for HTTP_IDLE_TIMEOUT, or has not sent its whole
# request within HTTP_REQUEST_DEADLINE, is cut off; above HTTP_CONNECTIONS_MAX at once, a new
# one is answered 503 at once. A body over HTTP_BODY_MAX is answered 413.
HTTP_IDLE_TIMEOUT = 10.0
HTTP_REQUEST_DEADLINE = 30.0
HTTP_CONNECTIONS_MAX = 64
HTTP_BODY_MAX = 1024 * 1024


class _DeadlineReader(io.RawIOBase):
    """A connection's bytes, where no read waits past the request's deadline."""

    def __init__(self, sock: socket.socket, deadline: float, idle: float) -> None:
        self._sock, self._deadline, self._idle = sock, deadline, idle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not received in time")
        self._sock.settimeout(min(left, self._idle))
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._idle)  # writing the answer gets the idle timeout


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's request handler with a deadline on reading the request, one request per
    connection, and its access lines at DEBUG under the server's logger."""

    protocol_version = "HTTP/1.0"
    server: ReceiverServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)
        deadline = time.monotonic() + self.server.request_deadline
        reader = _DeadlineReader(self.connection, deadline, self.server.idle_timeout)
        self.rfile = io.BufferedReader(reader)

    def log(self, type: str, message: str, *args: Any) -> None:
        self.server.logger.debug("%s: " + message, self.address_string(), *args)


_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b'Connection: close\r\n\r\n{"error": "too many connections; send it again"}'
)


class ReceiverServer(ThreadedWSGIServer):
    """werkzeug's threaded server with a bound on connections served at once. Threads are
    joined on close, so an answer being written is finished first."""

    daemon_threads = False
    block_on_close = True

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApplication,
        *,
        idle_timeout: float,
        request_deadline: float,
        connections: int,
        logger: logging.Logger,
    ) -> None:
        self.idle_timeout, self.request_deadline = idle_timeout, request_deadline
        self.logger = logger
        self._slots = threading.BoundedSemaphore(connections)
        super().__init__(host, port, app, handler=_QuietHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()  # no thread was started to give it back
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def answer(status: int, data: dict[str, Any], **headers: str) -> Response:
    """A JSON answer."""
    return Response(json.dumps(data), status, mimetype="application/json", headers=headers)


class BodyProblem(Exception):
    """The body could not be read whole: too large (413) or too slow (408)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def read_body(request: Request, limit: int = HTTP_BODY_MAX) -> bytes:
    """The request's body, or BodyProblem carrying the 413/408 answer. A body over `limit` is
    refused from its Content-Length, or once more than `limit` bytes came: never read whole."""
    request.max_content_length = limit
    try:
        return request.get_data()
    except RequestEntityTooLarge:
        too_large = answer(413, {"error": f"body: over the limit of {limit} bytes"})
        raise BodyProblem(too_large) from None
    except (ClientDisconnected, TimeoutError, ConnectionError):
        # werkzeug reports a read cut off by the deadline as a client that went away.
        raise BodyProblem(answer(408, {"error": "body: not received in time"})) from None


def serve(
    host: str,
    port: int,
    app: WSGIApplication,
    *,
    idle_timeout: float = HTTP_IDLE_TIMEOUT,
    request_deadline: float = HTTP_REQUEST_DEADLINE,
    connections: int = HTTP_CONNECTIONS_MAX,
    logger: logging.Logger | None = None,
) -> BaseWSGIServer:
    """The threaded server around `app`, bound and listening (`serve_forever` runs it)."""
    return ReceiverServer(
        host,
        port,
        app,
        idle_timeout=idle_timeout,
        request_deadline=request_deadline,
        connections=connections,
        logger=logger or logging.getLogger("wanedit.http"),
    )
