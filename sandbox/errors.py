"""Provider error answers: an HTTP status with DashScope's flat ``{code, message}`` body.

The messages copy the real provider's wording where it is known, so clients that match on a
message (the "download the media resource timed out" variant, for one) behave as in production.
"""

from __future__ import annotations

INTERNAL_ERROR_MESSAGE = (
    "An internal error has occured, please try again later or contact service support."
)
THROTTLED_MESSAGE = "Requests rate limit exceeded, please try again later."
DOWNLOAD_TIMEOUT_MESSAGE = (
    "Download the media resource timed out during the data inspection process."
)
INPUT_MODERATION_MESSAGE = "Input data may contain inappropriate content."
OUTPUT_MODERATION_MESSAGE = "Output data may contain inappropriate content."
ALGO_ERROR_MESSAGE = (
    "An internal error occurred in the algorithm, please try again later "
    "or contact service support."
)
IMAGE_TIMEOUT_MESSAGE = (
    "An internal timeout error has occured during execution, "
    "please try again later or contact service support."
)
CANCEL_REFUSED_MESSAGE = (
    "Failed to cancel the task, please confirm if the task is in PENDING status."
)


class ApiError(Exception):
    """An error answer of the API: HTTP status, provider code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self, request_id: str) -> dict[str, str]:
        """The flat JSON body every DashScope HTTP error uses."""
        return {"code": self.code, "message": self.message, "request_id": request_id}


def invalid_parameter(message: str) -> ApiError:
    """A 400 ``InvalidParameter`` naming the field and its problem."""
    return ApiError(400, "InvalidParameter", message)


def invalid_api_key() -> ApiError:
    return ApiError(401, "InvalidApiKey", "Invalid API-key provided.")


# PROVIDER.md's table: 400 Arrearage, "account unpaid, operator must act"; the wording is the one
# Alibaba Cloud's Model Studio error-code page gives for it.
ARREARAGE_MESSAGE = "Access denied, please make sure your account is in good standing."


def arrearage() -> ApiError:
    return ApiError(400, "Arrearage", ARREARAGE_MESSAGE)


def sync_not_supported() -> ApiError:
    return ApiError(403, "AccessDenied", "current user api does not support synchronous calls")


def throttled() -> ApiError:
    return ApiError(429, "Throttling.RateQuota", THROTTLED_MESSAGE)


def internal_error() -> ApiError:
    return ApiError(500, "InternalError", INTERNAL_ERROR_MESSAGE)


def input_moderation() -> ApiError:
    return ApiError(400, "DataInspectionFailed", INPUT_MODERATION_MESSAGE)


def download_failed() -> ApiError:
    return invalid_parameter(DOWNLOAD_TIMEOUT_MESSAGE)


def invalid_url(field: str) -> ApiError:
    return ApiError(
        400,
        "InvalidURL",
        f"The request URL is invalid, {field}: please check that it is a public http(s) URL "
        "or a data:{mime};base64,... URI.",
    )


def cancel_refused() -> ApiError:
    return ApiError(400, "UnsupportedOperation", CANCEL_REFUSED_MESSAGE)


class LostAnswer(Exception):
    """A create whose task was made but whose answer the HTTP layer must lose.

    ``mode`` is ``"504"`` (an HTML gateway page) or ``"drop"`` (no answer at all); see
    ``wanedit.sandbox.faults`` for every mode.
    """

    def __init__(self, mode: str) -> None:
        super().__init__(f"create answer lost on purpose ({mode})")
        self.mode = mode
