"""Job ids. Pure."""

from __future__ import annotations

import re
import uuid

_JOB_ID = re.compile(r"[0-9a-f]{32}")


def new_job_id() -> str:
    return uuid.uuid4().hex


def is_job_id(value: object) -> bool:
    """A job id as `new_job_id` makes them: 32 lowercase hex digits (a uuid4's hex)."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None
