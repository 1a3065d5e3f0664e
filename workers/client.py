"""The DashScope HTTP client: create, get and cancel, on one pooled requests session."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from wanedit.errors import (
    MalformedResponse,
    OutcomeUnknown,
    ProviderError,
    TerminalProviderError,
    TransientProviderError,
)
from workers.codes import classify
from workers.provider import (
    ListedTask,
    TaskState,
    parse_created,
    parse_list,
    parse_listed,
    parse_task,
)

CREATE_PATH = "/services/aigc/image2image/image-synthesis"
MAX_BODY = 1024 * 1024  # provider answers are small; never parse a huge body


def provider_error(
    http_status: int | None, code: str, message: str, request_id: str | None = None
) -> ProviderError:
    """Build the error of the right class for a code, from the one classification table."""
    decision = classify(http_status, code, message)
    cls = TransientProviderError if decision.retry else TerminalProviderError
    return cls(
        code,
        message,
        http_status=http_status,
        request_id=request_id,
        throttled=decision.throttled,
        max_retries=decision.max_retries,
    )


def make_session(pool_size: int = 20) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class ProviderClient:
    """Talks to one provider account. The key goes in each request's header, never elsewhere."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._session = session
        # Told the code of every error a call ends with (the provider-errors counter).
        self._on_error = on_error
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = (connect_timeout, read_timeout)
        self._redact = (api_key.encode(), b"***") if api_key else (b"", b"")

    def __repr__(self) -> str:
        return f"ProviderClient(base_url={self._base_url!r})"

    def create(self, model: str, payload: dict[str, Any]) -> tuple[str, str | None]:
        """Create a task; returns (task_id, request_id). A lost answer raises OutcomeUnknown."""
        body = {"model": model, **payload}
        with self._counting():
            answer = self._call("POST", CREATE_PATH, json_body=body, async_=True, idempotent=False)
            try:
                return parse_created(answer)
            except MalformedResponse as exc:
                raise OutcomeUnknown(exc.code, exc.message) from None

    def get(self, task_id: str) -> TaskState:
        with self._counting():
            return parse_task(self._call("GET", f"/tasks/{task_id}"), task_id)

    def list_recent(self, model: str, page_size: int = 100) -> dict[str, str]:
        """Status of the account's newest tasks of `model` (one query for many tasks)."""
        query = f"/tasks?model_name={model}&page_no=1&page_size={page_size}"
        with self._counting():
            return parse_list(self._call("GET", query))

    def list_window(
        self, model: str, start: float, end: float, utc_offset_hours: float = 0.0
    ) -> list[ListedTask]:
        """The account's tasks of `model` submitted between `start` and `end` (unix seconds)."""

        def stamp(moment: float) -> str:
            shifted = datetime.fromtimestamp(moment + utc_offset_hours * 3600, tz=UTC)
            return shifted.strftime("%Y%m%d%H%M%S")

        query = (
            f"/tasks?model_name={model}&start_time={stamp(start)}&end_time={stamp(end)}"
            "&page_no=1&page_size=100"
        )
        with self._counting():
            return parse_listed(self._call("GET", query), utc_offset_hours)

    def cancel(self, task_id: str) -> None:
        """Cancel a PENDING task; a task already running answers with a terminal error."""
        with self._counting():
            self._call("POST", f"/tasks/{task_id}/cancel")

    @contextmanager
    def _counting(self) -> Iterator[None]:
        try:
            yield
        except ProviderError as exc:
            if self._on_error is not None:
                self._on_error(exc.code)
            raise

    def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        async_: bool = False,
        idempotent: bool = True,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if async_:
            headers["X-DashScope-Async"] = "enable"
        try:
            response = self._session.request(
                method,
                self._base_url + path,
                json=json_body,
                headers=headers,
                timeout=self._timeout,
                stream=True,
            )
        except requests.ConnectTimeout as exc:
            raise TransientProviderError("ConnectionError", _describe(exc)) from None
        except requests.ConnectionError as exc:
            # A refused or unresolvable connection sent nothing; anything else may have.
            if not idempotent and not _never_sent(exc):
                raise OutcomeUnknown("OutcomeUnknown", _describe(exc)) from None
            raise TransientProviderError("ConnectionError", _describe(exc)) from None
        except requests.Timeout as exc:
            if not idempotent:
                raise OutcomeUnknown("OutcomeUnknown", _describe(exc)) from None
            raise TransientProviderError("RequestTimeOut", _describe(exc)) from None
        except requests.RequestException as exc:
            raise TransientProviderError("ConnectionError", _describe(exc)) from None
        with response:
            try:
                raw = response.raw.read(MAX_BODY + 1, decode_content=True)
            except (requests.RequestException, OSError) as exc:
                if not idempotent:
                    raise OutcomeUnknown("OutcomeUnknown", _describe(exc)) from None
                raise TransientProviderError("ConnectionError", _describe(exc)) from None
        if self._redact[0]:
            # A gateway that echoes the key in a message must not put it in records or logs.
            raw = raw.replace(*self._redact)
        return _decode(response.status_code, raw, idempotent)


def _decode(status: int, raw: bytes, idempotent: bool) -> Any:
    body: Any = None
    problem = f"is over {MAX_BODY} bytes"
    if len(raw) <= MAX_BODY:
        problem = "is not JSON"
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: JSON nested deeper than the parser's stack, e.g. "[[[[...]]]]".
            body = None
    if status >= 400:
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            message = body.get("message")
            raise provider_error(
                status,
                body["code"],
                message if isinstance(message, str) else "",
                body.get("request_id") if isinstance(body.get("request_id"), str) else None,
            )
        # Not JSON (a gateway's HTML page, say): code Unknown, classified by the status alone.
        raise provider_error(status, "Unknown", f"HTTP {status} with a body that {problem}")
    if body is None:
        error = MalformedResponse("MalformedResponse", f"HTTP {status} answer {problem}")
        if not idempotent:
            # The create may have worked; we cannot tell which task it made.
            raise OutcomeUnknown(error.code, error.message)
        raise error
    return body


def _never_sent(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "Connection refused")
    )


def _describe(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {str(exc)[:300]}"
