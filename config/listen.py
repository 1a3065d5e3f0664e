"""Listen rules: which uploaded objects become which edits (WANEDIT_LISTEN_RULES)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wanedit.errors import InvalidRequest
from wanedit.request import parse_request
from wanedit.storage import S3Location

# Set by the listener for each object, never by a rule.
_RESERVED = ("idempotency_key",)


class ListenRule(BaseModel):
    """Objects in `bucket` whose key starts with `prefix` and ends with `suffix` are edited with
    the rule's request fields (`prompt`, `n`, `size`, ...) and written under `output`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    bucket: str = Field(min_length=1)
    prefix: str = ""
    suffix: str = ""
    output: str

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        return str(S3Location.parse_prefix(value))

    @model_validator(mode="after")
    def _template(self) -> ListenRule:
        for name in _RESERVED:
            if name in self.template:
                raise ValueError(f"{name}: is set by the listener for each event, not by a rule")
        try:
            # The uploaded object is Image 1; a rule may name further reference images.
            parse_request(self.request_for(f"s3://{self.bucket}/example.png", "listen-check"))
        except InvalidRequest as exc:
            raise ValueError("; ".join(exc.problems)) from None
        return self

    @property
    def template(self) -> dict[str, Any]:
        """The rule's edit request fields other than the object it reacts to."""
        return dict(self.model_extra or {})

    def matches(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix) and key.endswith(self.suffix)

    def request_for(self, source: str, idempotency_key: str) -> dict[str, Any]:
        """The edit request for one object."""
        template = self.template
        return {
            **template,
            "images": [source, *template.get("images", [])],
            "output": self.output,
            "idempotency_key": idempotency_key,
        }
