"""One small exception tree for wanedit.

WaneditError
 +-- ConfigError            a setting is missing or malformed (raised at start-up)
 +-- InvalidRequest         an edit request breaks the enqueue contract; nothing was enqueued
 |    +-- IdempotencyConflict  its idempotency key was used for a different request
 +-- InvalidEvent           a storage notification or provider event could not be understood
 +-- JobNotFound            no job record exists under that id
 +-- BackendUnavailable     Redis or S3 cannot be reached by a producer (try again later)
 +-- ProviderError          the provider answered with an error (code, message, HTTP status)
 |    +-- TransientProviderError   worth retrying with backoff (throttling, 5xx, timeouts)
 |    |    +-- MalformedResponse    an answer that could not be understood
 |    +-- TerminalProviderError    retrying cannot help (bad input, moderation, auth, billing)
 |    +-- OutcomeUnknown           a create whose answer was lost: neither retried nor failed
 +-- StorageError           S3 failed while a worker read an input or wrote a result
 |    +-- TransientStorageError    S3 unreachable, throttling or a server error: retry
 |    +-- TerminalStorageError     missing, denied or refused: retrying cannot help
 +-- UrlNotAllowed          a URL a worker would fetch is not http(s), is spelled so that
                            parsers disagree on its host, or is not at a public address

The kinds are disjoint: no transient class is a terminal one, and OutcomeUnknown is neither
(a create that may have made a task is reconciled against the provider's task list, never
sent again blindly and never failed at once). Code that chooses between retrying and failing
catches the kinds, so the order of its `except` clauses cannot turn one into another;
ProviderError and StorageError catch every kind of their family.
"""

from __future__ import annotations


class WaneditError(Exception):
    """Base class of every error wanedit raises on purpose."""


class ConfigError(WaneditError):
    """A setting is missing or malformed."""


class InvalidRequest(WaneditError):
    """An edit request breaks the enqueue contract; nothing was enqueued."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class IdempotencyConflict(InvalidRequest):
    """The idempotency key names a job made for a different request; nothing was enqueued."""

    def __init__(self, key: str, job_id: str) -> None:
        self.key = key
        self.job_id = job_id
        super().__init__(
            [
                f"idempotency_key {key!r}: already used for job {job_id} with a different "
                "request (prompt, images, n, size, seed, prompt_extend, watermark, "
                "negative_prompt or output); the same request returns that job, a new one "
                "needs a new key"
            ]
        )


class InvalidEvent(WaneditError):
    """A storage notification or provider event could not be understood; dropped with a reason."""


class JobNotFound(WaneditError):
    """No job record exists under that id (never created, or expired)."""


class BackendUnavailable(WaneditError):
    """Redis or S3 cannot be reached by a producer; nothing was half-written."""


class ProviderError(WaneditError):
    """The provider answered with an error code and message (the base of its three kinds)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        throttled: bool = False,
        max_retries: int | None = None,
    ) -> None:
        self.code = code
        self.throttled = throttled
        self.max_retries = max_retries
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        status = f"HTTP {http_status} " if http_status else ""
        super().__init__(f"{status}{code}: {message}")

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class TransientProviderError(ProviderError):
    """A provider error that may clear by itself: retry with backoff and jitter."""


class TerminalProviderError(ProviderError):
    """A provider error that retrying cannot fix."""


class OutcomeUnknown(ProviderError):
    """A create may have reached the provider but its answer was lost: never blindly re-send."""


class MalformedResponse(TransientProviderError):
    """The provider's answer could not be understood (not JSON, missing or mistyped fields)."""


class StorageError(WaneditError):
    """S3 failed while a worker read an input or wrote a result (the base of its two kinds)."""


class TransientStorageError(StorageError):
    """S3 could not be reached, throttled us or answered with a server error: retry."""


class TerminalStorageError(StorageError):
    """The object or bucket is missing, or S3 refused the request: retrying cannot help."""


class UrlNotAllowed(WaneditError):
    """A URL a worker would fetch is not http(s), is spelled ambiguously, or is not public."""

    code = "UrlNotAllowed"

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")
