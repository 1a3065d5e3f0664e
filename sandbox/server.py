"""Run the sandbox as a threaded werkzeug HTTP server, in the foreground or a daemon thread."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from wanedit.sandbox.app import API, SandboxApp
from wanedit.sandbox.images import Fetcher
from wanedit.sandbox.service import Clock, Sandbox
from wanedit.sandbox.settings import SandboxConfig

__all__ = ["SandboxConfig", "SandboxServer"]


class _QuietHandler(WSGIRequestHandler):
    """No access log: tests and benchmarks send thousands of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SandboxServer:
    """A DashScope-compatible server for one ``SandboxConfig``.

    ``start()`` serves in a daemon thread and returns self; ``base_url`` is then the value for
    ``DASHSCOPE_HTTP_BASE_URL``. ``clock`` and ``fetch`` replace the wall clock and the input
    image downloader (tests).
    """

    def __init__(
        self,
        config: SandboxConfig,
        *,
        clock: Clock = time.time,
        fetch: Fetcher | None = None,
        access_log: bool = False,
    ) -> None:
        self.config = config
        self.sandbox = Sandbox(config, clock=clock, fetch=fetch)
        self.app = SandboxApp(self.sandbox)
        self._access_log = access_log
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> BaseWSGIServer:
        """Open the listening socket (port 0 picks a free one)."""
        if self._server is None:
            handler = WSGIRequestHandler if self._access_log else _QuietHandler
            self._server = make_server(
                self.config.host,
                self.config.port,
                self.app,
                threaded=True,
                request_handler=handler,
            )
        return self._server

    def start(self) -> SandboxServer:
        """Serve in a daemon thread; returns self."""
        server = self.bind()
        # A short poll interval makes stop() quick, which test fixtures notice.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="wanedit-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self.bind().serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.sandbox.close()
        if self._server is None:
            return
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._server = None

    @property
    def port(self) -> int:
        return self.bind().server_port

    @property
    def host_url(self) -> str:
        """``http://HOST:PORT``, with a wildcard bind address replaced by loopback."""
        host = self.config.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base, ``http://HOST:PORT/api/v1``."""
        return self.host_url + API

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (see ``Sandbox.stats``)."""
        return self.sandbox.stats()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
