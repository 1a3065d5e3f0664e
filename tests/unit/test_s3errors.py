"""One reading of S3 errors, over the exception objects botocore really raises."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from wanedit.s3errors import S3_EXCEPTIONS, S3Failure, S3Problem, classify_s3_error


def answer(code: str | None, status: int | None, message: str = "m", op: str = "GetObject"):
    """A ClientError as botocore builds it from an S3 error answer."""
    response: dict = {"Error": {"Message": message}, "ResponseMetadata": {}}
    if code is not None:
        response["Error"]["Code"] = code
    if status is not None:
        response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, op)


MISSING, DENIED, INVALID, SETUP, UNAVAILABLE = (
    S3Problem.MISSING,
    S3Problem.DENIED,
    S3Problem.INVALID,
    S3Problem.SETUP,
    S3Problem.UNAVAILABLE,
)


@pytest.mark.parametrize(
    ("error", "problem", "code"),
    [
        # What S3 (and moto) answer for a missing object, bucket or HEAD.
        (answer("NoSuchKey", 404), MISSING, "NoSuchKey"),
        (answer("NoSuchBucket", 404), MISSING, "NoSuchBucket"),
        (answer("404", 404, "Not Found", "HeadObject"), MISSING, "404"),
        (answer("NotFound", 404), MISSING, "NotFound"),
        (answer(None, 404), MISSING, "404"),
        # A 403 is the same everywhere: our credentials may not do this, and a retry won't help.
        (answer("AccessDenied", 403), DENIED, "AccessDenied"),
        (answer("403", 403, "Forbidden", "HeadBucket"), DENIED, "403"),
        (answer("InvalidAccessKeyId", 403), DENIED, "InvalidAccessKeyId"),
        (answer("SignatureDoesNotMatch", 403), DENIED, "SignatureDoesNotMatch"),
        (answer("ExpiredToken", 400), DENIED, "ExpiredToken"),
        (answer("SomethingNew", 403), DENIED, "SomethingNew"),
        # A skewed clock is a 403 that botocore corrects on the next attempt.
        (answer("RequestTimeTooSkewed", 403), UNAVAILABLE, "RequestTimeTooSkewed"),
        # Throttling and server errors clear by themselves.
        (answer("SlowDown", 503), UNAVAILABLE, "SlowDown"),
        (answer("InternalError", 500), UNAVAILABLE, "InternalError"),
        (answer("ServiceUnavailable", 503), UNAVAILABLE, "ServiceUnavailable"),
        (answer("RequestTimeout", 400), UNAVAILABLE, "RequestTimeout"),
        (answer("OperationAborted", 409), UNAVAILABLE, "OperationAborted"),
        (answer("502", 502, "Bad Gateway"), UNAVAILABLE, "502"),
        (answer(None, 429), UNAVAILABLE, "429"),
        (answer("Weird", None), UNAVAILABLE, "Weird"),
        (answer(None, None), UNAVAILABLE, "Unknown"),
        # Any other 4xx refuses the request as sent.
        (answer("InvalidArgument", 400), INVALID, "InvalidArgument"),
        (answer("InvalidObjectState", 409), INVALID, "InvalidObjectState"),
        (answer("EntityTooLarge", 400), INVALID, "EntityTooLarge"),
        # The transport: nothing came back, or the answer was cut short.
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), UNAVAILABLE, None),
        (ConnectTimeoutError(endpoint_url="http://s3"), UNAVAILABLE, None),
        (ReadTimeoutError(endpoint_url="http://s3"), UNAVAILABLE, None),
        (IncompleteReadError(actual_bytes=1, expected_bytes=2), UNAVAILABLE, None),
        (CredentialRetrievalError(provider="imds", error_msg="timed out"), UNAVAILABLE, None),
        # Our own set-up: no retry helps until it is changed.
        (NoCredentialsError(), SETUP, "NoCredentialsError"),
        (PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), SETUP, None),
        (NoRegionError(), SETUP, "NoRegionError"),
        (ParamValidationError(report="Invalid bucket name"), SETUP, "ParamValidationError"),
        # Not botocore's at all: a retry is the safe guess.
        (OSError("connection reset"), UNAVAILABLE, "OSError"),
    ],
)
def test_classify(error: Exception, problem: S3Problem, code: str | None) -> None:
    failure = classify_s3_error(error)
    assert failure.problem is problem
    assert failure.code == (code or error.__class__.__name__)
    assert failure.transient is (problem is UNAVAILABLE)
    assert failure.request_fault is (problem in (MISSING, DENIED, INVALID))


def test_the_client_raises_only_what_is_classified() -> None:
    assert issubclass(EndpointConnectionError, S3_EXCEPTIONS)
    assert issubclass(ClientError, S3_EXCEPTIONS)


@pytest.mark.parametrize(
    ("failure", "sentence"),
    [
        (S3Failure(MISSING, "NoSuchKey"), "s3://b/k does not exist (NoSuchKey)"),
        (
            S3Failure(DENIED, "AccessDenied", "Access Denied"),
            "s3://b/k is not accessible with our credentials (AccessDenied)",
        ),
        (
            S3Failure(INVALID, "InvalidArgument", "bad range"),
            "S3 refused the request for s3://b/k (InvalidArgument: bad range)",
        ),
        (
            S3Failure(UNAVAILABLE, "SlowDown", "Please reduce your request rate."),
            "S3 is unavailable for s3://b/k (SlowDown: Please reduce your request rate.)",
        ),
        (
            S3Failure(SETUP, "NoRegionError", "You must specify a region."),
            "the S3 client cannot make the request for s3://b/k "
            "(NoRegionError: You must specify a region.)",
        ),
    ],
)
def test_describe(failure: S3Failure, sentence: str) -> None:
    assert failure.describe("s3://b/k") == sentence


def test_missing_credentials_name_the_settings() -> None:
    sentence = classify_s3_error(NoCredentialsError()).describe("s3://b/k")
    assert "no AWS credentials were found for s3://b/k" in sentence
    assert "AWS_ACCESS_KEY_ID" in sentence and ".env" in sentence


def test_details_are_one_short_line() -> None:
    failure = classify_s3_error(answer("InvalidArgument", 400, "x\n" * 500))
    assert "\n" not in failure.detail and len(failure.detail) <= 200
