"""Scheduled batches: the `WANEDIT_BATCH_SCHEDULES` entries."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wanedit.cron import parse_cron
from wanedit.storage import S3Location


class BatchSchedule(BaseModel):
    """A manifest run by celery beat at the times a crontab (UTC) names: 5 fields, as
    Celery reads them (`30 2 * * mon-fri`), or a shorthand such as `@daily`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    cron: str
    manifest: str
    output: str | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)
        return value

    @field_validator("manifest")
    @classmethod
    def _manifest(cls, value: str) -> str:
        if value.startswith("s3://"):
            S3Location.parse_object(value)
        elif re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
            raise ValueError("must be s3://bucket/key or a local path")
        return value

    @field_validator("output")
    @classmethod
    def _output(cls, value: str | None) -> str | None:
        return None if value is None else str(S3Location.parse_prefix(value))
