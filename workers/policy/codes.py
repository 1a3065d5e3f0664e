"""The provider's error codes: the table is `wanedit.provider_codes` (producers read it too)."""

from wanedit.provider_codes import (
    MODERATION_CODES,
    TERMINAL,
    TERMINAL_CODES,
    THROTTLED,
    THROTTLING_CODES,
    TRANSIENT,
    TRANSIENT_CODES,
    Decision,
    classify,
)

__all__ = [
    "MODERATION_CODES",
    "TERMINAL",
    "TERMINAL_CODES",
    "THROTTLED",
    "THROTTLING_CODES",
    "TRANSIENT",
    "TRANSIENT_CODES",
    "Decision",
    "classify",
]
