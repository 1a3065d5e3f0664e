"""The WSGI application: DashScope's routes, headers and bodies over a ``Sandbox``.

Every answer carries a fresh uuid ``request_id`` (in the body and the ``X-Request-Id`` header;
the header is a sandbox convenience). API errors are flat ``{"code", "message", "request_id"}``
JSON; result downloads behave like OSS presigned URLs and refuse with an XML body. ``/sandbox/*``
are the sandbox's own controls and need no API key.

A lost create answer (``wanedit.sandbox.faults``) in mode ``504`` is an HTML gateway page with
neither a JSON body nor a request id; in mode ``drop`` the app shuts the client's socket
(``environ["werkzeug.socket"]``, set by werkzeug's server) and raises ``ConnectionAbortedError``,
which werkzeug's request handler treats as a dropped connection: nothing is written, and the
client sees the connection closed without an answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from wanedit.sandbox.errors import ApiError, LostAnswer, internal_error, invalid_parameter
from wanedit.sandbox.params import decode_json
from wanedit.sandbox.service import DownloadError, Sandbox

log = logging.getLogger(__name__)

API = "/api/v1"
# Three base64 images of up to 10 MB each, with room to spare.
MAX_BODY_BYTES = 64 * 1024 * 1024
# What a gateway in front of the provider answers when the service behind it did not in time.
GATEWAY_TIMEOUT_PAGE = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

URLS = Map(
    [
        Rule(f"{API}/services/aigc/image2image/image-synthesis", endpoint="create"),
        Rule(f"{API}/services/aigc/<path:rest>", endpoint="wrong_service"),
        Rule(f"{API}/tasks", endpoint="list", methods=["GET"]),
        Rule(f"{API}/tasks/<task_id>", endpoint="query", methods=["GET"]),
        Rule(f"{API}/tasks/<task_id>/cancel", endpoint="cancel", methods=["POST"]),
        Rule("/results/<task_id>/<int:index>.png", endpoint="download", methods=["GET"]),
        Rule("/sandbox/stats", endpoint="stats", methods=["GET"]),
        Rule("/sandbox/config", endpoint="config", methods=["GET", "POST"]),
        Rule("/sandbox/reset-stats", endpoint="reset_stats", methods=["POST"]),
        Rule("/sandbox/events", endpoint="events", methods=["GET"]),
    ],
    strict_slashes=False,
)

# A handler takes the request, the URL's values and the answer's request_id, and answers a JSON
# object (sent with that request_id) or a ready Response.
Handler = Callable[[Request, dict[str, Any], str], "dict[str, Any] | Response"]


class SandboxApp:
    """A WSGI callable serving one ``Sandbox``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._handlers: dict[str, Handler] = {
            "create": self._create,
            "wrong_service": self._wrong_service,
            "list": self._list,
            "query": self._query,
            "cancel": self._cancel,
            "download": self._download,
            "stats": self._stats,
            "config": self._config,
            "reset_stats": self._reset_stats,
            "events": self._events,
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        try:
            response = self._dispatch(request)
        except LostAnswer:
            _drop_connection(environ)
            raise ConnectionAbortedError("sandbox: create answer dropped on purpose") from None
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            endpoint, values = URLS.bind_to_environ(request.environ).match()
            answer = self._handlers[str(endpoint)](request, dict(values), request_id)
            if isinstance(answer, Response):
                response = answer
            else:
                # request_id first, as the provider writes it.
                response = _json({"request_id": request_id, **answer})
        except ApiError as exc:
            response = _json(exc.body(request_id), exc.status)
        except LostAnswer as exc:
            if exc.mode == "drop":
                raise
            return Response(GATEWAY_TIMEOUT_PAGE, status=504, mimetype="text/html")
        except DownloadError as exc:
            response = _oss_error(exc, request_id)
        except HTTPException as exc:
            response = _http_error(exc, request_id)
        except Exception:
            log.exception("sandbox request %s failed", request_id)
            response = _json(internal_error().body(request_id), 500)
        response.headers["X-Request-Id"] = request_id
        return response

    def _account(self, request: Request) -> str:
        return self.sandbox.authenticate(request.headers.get("Authorization"))

    def _create(self, request: Request, values: dict[str, Any], request_id: str) -> dict[str, Any]:
        if request.method != "POST":
            raise MethodNotAllowed(valid_methods=["POST"])
        key = self._account(request)
        async_header = request.headers.get("X-DashScope-Async")
        body = request.get_data(cache=False)
        return self.sandbox.create(key, body, async_header, request_id=request_id)

    def _wrong_service(self, request: Request, values: dict[str, Any], _: str) -> dict[str, Any]:
        self._account(request)
        # What the provider answers when an old SDK posts an i2i model to the text2image path.
        raise invalid_parameter("url error, please check url!")

    def _list(self, request: Request, values: dict[str, Any], _: str) -> dict[str, Any]:
        account = self._account(request)
        return self.sandbox.list_tasks(account, request.args)

    def _query(self, request: Request, values: dict[str, Any], _: str) -> dict[str, Any]:
        account = self._account(request)
        base_url = request.host_url.rstrip("/")
        return self.sandbox.query(account, values["task_id"], base_url)

    def _cancel(self, request: Request, values: dict[str, Any], _: str) -> dict[str, Any]:
        account = self._account(request)
        return self.sandbox.cancel(account, values["task_id"])

    def _download(self, request: Request, values: dict[str, Any], _: str) -> Response:
        png = self.sandbox.download(
            values["task_id"],
            values["index"],
            request.args.get("Expires"),
            request.args.get("Signature"),
        )
        return Response(png, mimetype="image/png")

    def _stats(self, request: Request, values: dict[str, Any], _: str) -> dict[str, Any]:
        return self.sandbox.stats()

    def _config(self, request: Request, values: dict[str, Any], _: str) -> dict[str, Any]:
        if request.method == "GET":
            return self.sandbox.runtime_config()
        return self.sandbox.update_config(decode_json(request.get_data(cache=False)))

    def _events(self, request: Request, values: dict[str, Any], _: str) -> dict[str, Any]:
        # Sandbox-only: each task-end event's end and answer times, for benchmarks.
        return {"events": self.sandbox.event_records()}

    def _reset_stats(self, request: Request, values: dict[str, Any], _: str) -> dict[str, Any]:
        self.sandbox.reset_stats()
        return self.sandbox.stats()


def _drop_connection(environ: dict[str, Any]) -> None:
    """Shut the client's socket so that no answer reaches it (werkzeug's server only)."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # the client may have gone already
            sock.shutdown(socket.SHUT_RDWR)


def _dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _json(body: Any, status: int = 200) -> Response:
    return Response(_dump(body), status=status, mimetype="application/json")


def _http_error(exc: HTTPException, request_id: str) -> Response:
    code = "NotFound" if isinstance(exc, NotFound) else type(exc).__name__
    status = exc.code or 500
    body = {"code": code, "message": exc.description or exc.name, "request_id": request_id}
    response = _json(body, status)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _oss_error(exc: DownloadError, request_id: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error>\n"
        f"  <Code>{exc.code}</Code>\n"
        f"  <Message>{exc.message}</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n"
        "  <HostId>sandbox</HostId>\n"
        "</Error>\n"
    )
    return Response(body, status=exc.status, mimetype="application/xml")
