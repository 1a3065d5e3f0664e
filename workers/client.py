"""The DashScope HTTP client: create, get and cancel, on one pooled requests session."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
import urllib3.exceptions

from wanedit.errors import (
    MalformedResponse,
    OutcomeUnknown,
    ProviderError,
    TerminalProviderError,
    TransientProviderError,
)
from wanedit.provider_time import BEIJING_UTC_OFFSET, filter_stamp
from wanedit.workers.pinned import PinnedAdapter
from wanedit.workers.policy.codes import TRANSIENT_CODES, classify
from wanedit.workers.provider import (
    ListedTask,
    ListPage,
    TaskState,
    parse_cancel,
    parse_created,
    parse_list_page,
    parse_task,
)

CREATE_PATH = "/services/aigc/image2image/image-synthesis"
MAX_BODY = 1024 * 1024  # provider answers are small; never parse a huge body
LIST_WINDOW_MAX = 24 * 3600.0  # the provider refuses a list window longer than 24 h
LIST_PAGE_SIZE = 100  # the maximum is undocumented; 100 is the common cap of such APIs
LIST_PAGES_MAX = 50  # a bound on one list walk: 5,000 rows, far above what one window holds


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
    """A pooled session that never retries by itself; its adapter can pin a request to the
    address the URL guard checked (see `wanedit.workers.pinned`)."""
    session = requests.Session()
    adapter = PinnedAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
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
        utc_offset_hours: float = BEIJING_UTC_OFFSET,
        zone: Callable[[], float] | None = None,
    ) -> None:
        # The zone of the provider's time strings and list filters: `zone()` when given (the
        # account's configured or measured zone, wanedit.workers.zone), else the fixed value.
        self._fixed_offset = utc_offset_hours
        self._zone = zone
        # The HTTP Date header of the last answer (the provider's clock, to the second).
        self.last_date: str | None = None
        self._session = session
        # Told the code of every error a call ends with (the provider-errors counter).
        self._on_error = on_error
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = (connect_timeout, read_timeout)
        self._redact = (api_key.encode(), b"***") if api_key else (b"", b"")

    def __repr__(self) -> str:
        return f"ProviderClient(base_url={self._base_url!r})"

    @property
    def session(self) -> requests.Session:
        return self._session

    @property
    def utc_offset_hours(self) -> float:
        """Hours east of UTC of the provider's time strings and list filters."""
        return self._zone() if self._zone is not None else self._fixed_offset

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

    def list_page(
        self,
        model: str,
        start: float,
        end: float,
        page_no: int = 1,
        page_size: int = LIST_PAGE_SIZE,
    ) -> ListPage:
        """One page of the account's tasks of `model` submitted between `start` and `end` (unix
        seconds; at most 24 h apart, sent in the provider's zone to the second)."""
        low, high = math.floor(start), math.ceil(end)
        if high - low > LIST_WINDOW_MAX:
            raise ValueError(f"a list window spans at most 24 h, not {high - low} s")
        offset = self.utc_offset_hours
        query = (
            f"/tasks?model_name={model}&start_time={filter_stamp(low, offset)}"
            f"&end_time={filter_stamp(high, offset)}&page_no={page_no}&page_size={page_size}"
        )
        with self._counting():
            return parse_list_page(self._call("GET", query))

    def list_recent(
        self, model: str, page_no: int = 1, page_size: int = LIST_PAGE_SIZE
    ) -> ListPage:
        """One page of the account's tasks of `model` of the last 24 h: no time filter, so the
        answer needs no knowledge of the provider's zone."""
        query = f"/tasks?model_name={model}&page_no={page_no}&page_size={page_size}"
        with self._counting():
            return parse_list_page(self._call("GET", query))

    def list_window(
        self,
        model: str,
        start: float,
        end: float,
        *,
        pace: Callable[[], None] | None = None,
        page_size: int = LIST_PAGE_SIZE,
    ) -> list[ListedTask]:
        """Every task of `model` submitted between `start` and `end`: windows of at most 24 h,
        each read page by page up to its `total_page` (no order is assumed). `pace` is called
        before every call but the first, to keep to the account's query rate."""
        rows: dict[str, ListedTask] = {}
        calls = 0
        low = start
        while True:
            high = min(end, low + LIST_WINDOW_MAX - 2)
            window: dict[str, ListedTask] = {}
            page_no, total_page, total = 1, 1, None
            while page_no <= total_page:
                if calls and pace is not None:
                    pace()
                calls += 1
                page = self.list_page(model, low, high, page_no, page_size)
                # Rows may shift between pages while tasks are created: keep each id once.
                window.update((row.task_id, row) for row in page.rows)
                total_page = page.total_page
                # New tasks only add rows during a walk: the first count is the least expected.
                total = page.total if total is None else min(total, page.total)
                if not page.rows and page_no <= total_page:
                    raise _incomplete(f"page {page_no} of {total_page} came back empty")
                if page_no >= LIST_PAGES_MAX and total_page > page_no:
                    # Never a partial answer: reconciling on one could create a task twice.
                    raise TransientProviderError(
                        "ListTooLong",
                        f"the task list holds {page.total} tasks in one window, over the "
                        f"{LIST_PAGES_MAX} pages one walk reads",
                    )
                page_no += 1
            if total and len(window) < total:
                # A page capped, skipped or repeated: a partial list could create a task twice.
                raise _incomplete(f"{len(window)} distinct tasks read of the {total} listed")
            rows.update(window)
            if high >= end:
                return list(rows.values())
            low = high

    def cancel(self, task_id: str) -> None:
        """Cancel a PENDING task. A 200 (only a request id) means canceled; a task that has
        started answers 400 UnsupportedOperation, a TerminalProviderError."""
        with self._counting():
            parse_cancel(self._call("POST", f"/tasks/{task_id}/cancel"))

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
        self.last_date = response.headers.get("Date")
        with response:
            try:
                raw = response.raw.read(MAX_BODY + 1, decode_content=True)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                # A body cut short, stalled or undecodable: the request was sent and answered.
                if not idempotent:
                    raise OutcomeUnknown("OutcomeUnknown", _describe(exc)) from None
                raise TransientProviderError("ConnectionError", _describe(exc)) from None
        if self._redact[0]:
            # A gateway that echoes the key in a message must not put it in records or logs.
            raw = raw.replace(*self._redact)
        return _decode(response.status_code, raw, idempotent)


def _decode(status: int, raw: bytes, idempotent: bool) -> Any:
    """The JSON body of a 2xx answer, or the error it means.

    For a create (`idempotent` False), only a JSON error body whose code refuses the request
    proves no task was made. A 5xx, a 408, a timeout code, or a body that is not JSON may come
    after the task was made: those raise OutcomeUnknown, never a plain retryable error."""
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
        code, message, request_id = "Unknown", f"HTTP {status} with a body that {problem}", None
        coded = isinstance(body, dict) and isinstance(body.get("code"), str) and body["code"]
        if coded:
            code = body["code"]
            message = body.get("message") if isinstance(body.get("message"), str) else ""
            request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
        if not idempotent and not refused(status, code if coded else None):
            raise OutcomeUnknown(code, message, http_status=status, request_id=request_id)
        # Not JSON (a gateway's HTML page, say): code Unknown, classified by the status alone.
        raise provider_error(status, code, message, request_id)
    if body is None:
        error = MalformedResponse("MalformedResponse", f"HTTP {status} answer {problem}")
        if not idempotent:
            # The create may have worked; we cannot tell which task it made.
            raise OutcomeUnknown(error.code, error.message)
        raise error
    return body


def refused(http_status: int, code: str | None) -> bool:
    """Whether an error answer to a create proves that no task was made: a JSON error body with
    a code that refuses the request (validation, key, account, quota, throttling). A 5xx, a 408
    and the timeout and internal codes do not: the task may have been made before the failure."""
    if code is None or http_status >= 500 or http_status == 408:
        return False
    lowered = code.lower()
    if "timeout" in lowered or lowered.startswith(("internalerror", "systemerror")):
        return False
    return code not in TRANSIENT_CODES


def _incomplete(why: str) -> TransientProviderError:
    return TransientProviderError("ListIncomplete", f"the task list could not be read whole: {why}")


def _never_sent(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "Connection refused")
    )


def _describe(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {str(exc)[:300]}"
