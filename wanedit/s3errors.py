"""What an S3 error means, and whether retrying can help. Pure: reads botocore's exception
objects, makes no call.

Every place that talks to S3 asks `classify_s3_error` and acts on its answer, so a 403 or a
timeout means the same thing to the producers, the enqueue task and the workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)

# What the S3 client raises; catch these, then classify.
S3_EXCEPTIONS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)

DETAIL_MAX = 200

MISSING_CODES = frozenset(
    {"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload", "NoSuchVersion"}
)
# Codes that clear by themselves, whatever their HTTP status (RequestTimeTooSkewed is a 403:
# botocore corrects its clock offset on the next attempt).
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "OperationAborted",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
    }
)
DENIED_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)
# Transport failures: the request may not have arrived, or its answer was cut short.
TRANSIENT_TRANSPORT = (
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    ChecksumError,
    FlexibleChecksumError,
    CredentialRetrievalError,
)
NO_CREDENTIALS = (NoCredentialsError, PartialCredentialsError)
NO_CREDENTIALS_NAMES = frozenset(cls.__name__ for cls in NO_CREDENTIALS)


class S3Problem(Enum):
    """The kinds of S3 failure; only UNAVAILABLE is worth retrying."""

    MISSING = "missing"  # the bucket or the object does not exist
    DENIED = "denied"  # our credentials may not do this
    INVALID = "invalid"  # S3 refused the request as sent: it can never succeed
    SETUP = "setup"  # our S3 client is set up wrong: no credentials, no region, bad arguments
    UNAVAILABLE = "unavailable"  # unreachable, throttled, a server error, a transfer cut short


@dataclass(frozen=True)
class S3Failure:
    """One classified S3 error: its kind, S3's code (or botocore's class name) and detail."""

    problem: S3Problem
    code: str
    detail: str = ""

    @property
    def transient(self) -> bool:
        """Whether the same call may work later, unchanged."""
        return self.problem is S3Problem.UNAVAILABLE

    @property
    def request_fault(self) -> bool:
        """Whether what was asked for is at fault (a missing, forbidden or refused object or
        bucket) rather than S3 or our own set-up."""
        return self.problem in (S3Problem.MISSING, S3Problem.DENIED, S3Problem.INVALID)

    def describe(self, subject: str) -> str:
        """A sentence about `subject` (an `s3://` URI, or words naming one)."""
        detail = f"{self.code}: {self.detail}" if self.detail else self.code
        if self.problem is S3Problem.MISSING:
            return f"{subject} does not exist ({self.code})"
        if self.problem is S3Problem.DENIED:
            return f"{subject} is not accessible with our credentials ({self.code})"
        if self.problem is S3Problem.INVALID:
            return f"S3 refused the request for {subject} ({detail})"
        if self.problem is S3Problem.SETUP:
            if self.code in NO_CREDENTIALS_NAMES:
                return (
                    f"no AWS credentials were found for {subject} (set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, in the environment or .env, or give it a role)"
                )
            return f"the S3 client cannot make the request for {subject} ({detail})"
        return f"S3 is unavailable for {subject} ({detail})"


def _detail(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 3] + "..."


def classify_s3_error(exc: BaseException) -> S3Failure:
    """What `exc`, raised by an S3 call, means. An answer without a status, or an exception
    that is not botocore's, is UNAVAILABLE: a retry is the safe guess when nothing says the
    request or our set-up is at fault."""
    if isinstance(exc, ClientError):
        return _classify_answer(exc)
    name = exc.__class__.__name__
    if isinstance(exc, TRANSIENT_TRANSPORT) or not isinstance(exc, BotoCoreError):
        return S3Failure(S3Problem.UNAVAILABLE, name, _detail(str(exc)))
    # No credentials, no region, a malformed endpoint, arguments botocore refuses to send.
    return S3Failure(S3Problem.SETUP, name, _detail(str(exc)))


def _classify_answer(exc: ClientError) -> S3Failure:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code") or status or "Unknown")
    detail = _detail(str(error.get("Message") or ""))
    if code in MISSING_CODES:
        problem = S3Problem.MISSING
    elif code in TRANSIENT_CODES:
        problem = S3Problem.UNAVAILABLE
    elif code in DENIED_CODES:
        problem = S3Problem.DENIED
    elif not isinstance(status, int) or status >= 500 or status in (408, 429):
        problem = S3Problem.UNAVAILABLE
    elif status == 404:
        problem = S3Problem.MISSING
    elif status == 403:
        problem = S3Problem.DENIED
    elif status >= 400:
        problem = S3Problem.INVALID
    else:
        problem = S3Problem.UNAVAILABLE
    return S3Failure(problem, code, detail)


__all__ = ["S3_EXCEPTIONS", "S3Failure", "S3Problem", "classify_s3_error"]
