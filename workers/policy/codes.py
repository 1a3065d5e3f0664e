"""The provider's error codes: the table is `wanedit.provider_codes` (producers read it too)."""

from wanedit.provider_codes import (
    ACCOUNT_CODES,
    MODERATION_CODES,
    SYNC_CALL_MESSAGE,
    TERMINAL,
    TERMINAL_CODES,
    THROTTLED,
    THROTTLING_CODES,
    TRANSIENT,
    TRANSIENT_CODES,
    Decision,
    classify,
    is_account_error,
)

__all__ = [
    "ACCOUNT_CODES",
    "MODERATION_CODES",
    "SYNC_CALL_MESSAGE",
    "TERMINAL",
    "TERMINAL_CODES",
    "THROTTLED",
    "THROTTLING_CODES",
    "TRANSIENT",
    "TRANSIENT_CODES",
    "Decision",
    "classify",
    "is_account_error",
]
