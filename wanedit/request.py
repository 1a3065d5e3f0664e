"""The enqueue contract: one pydantic model for an edit request.

Form checks live here (lengths, ranges, the size string, source syntax). Checks that need the
image bytes (format, alpha, side lengths) run in the producer, which reads local files and data
URIs and stages them into S3 before anything is enqueued.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wanedit import limits
from wanedit.errors import InvalidRequest
from wanedit.storage import S3Location
from wanedit.webhooks import check_callback_url, check_queue_name, check_task_name

# ASCII digits only, whole string only: `\d` takes other scripts' digits and `$` a final newline.
_SIZE = re.compile(r"([0-9]{1,5})\*([0-9]{1,5})")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]+")
# A local path never looks like `scheme://`; any other scheme is a mistake, not a file name.
_OTHER_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class SourceKind(StrEnum):
    URL = "url"
    S3 = "s3"
    DATA = "data"
    PATH = "path"


def source_kind(source: str) -> SourceKind:
    """How an image source is addressed; local paths are everything that is not a URI."""
    if source.startswith(("https://", "http://")):
        return SourceKind.URL
    if source.startswith("s3://"):
        return SourceKind.S3
    if source.startswith("data:"):
        return SourceKind.DATA
    return SourceKind.PATH


def _url_host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # a malformed IPv6 literal, say
        return None


def parse_size(size: str) -> tuple[int, int]:
    """Parse `W*H` and check it against the provider's pixel-count and aspect-ratio limits."""
    match = _SIZE.fullmatch(size)
    if not match:
        raise ValueError(f"{size[:30]!r} must look like W*H, for example 1280*1280")
    width, height = int(match.group(1)), int(match.group(2))
    if width == 0 or height == 0:
        raise ValueError(f"{size} has a zero side")
    pixels = width * height
    if not limits.PIXELS_MIN <= pixels <= limits.PIXELS_MAX:
        raise ValueError(
            f"{size} is {pixels} pixels, outside the provider's range of "
            f"768*768 ({limits.PIXELS_MIN}) to 1280*1280 ({limits.PIXELS_MAX})"
        )
    if not limits.ASPECT_MIN <= width / height <= limits.ASPECT_MAX:
        raise ValueError(f"{size} has an aspect ratio outside the provider's 1:4 to 4:1")
    return width, height


SCHEMA_ID = "urn:wanedit:edit-request:1"
_EXAMPLES: list[Any] = [
    {"prompt": "Make the sky purple", "images": ["https://example.com/photo.jpg"]},
    {
        "prompt": "Place the alarm clock from Image 1 next to the vase in Image 2",
        "images": ["s3://catalogue/clock.jpg", "https://cdn.example.com/vase.png"],
        "n": 2,
        "size": "1280*1280",
        "seed": 42,
        "output": "s3://my-bucket/edits/",
        "metadata": {"order": "A-17"},
        "idempotency_key": "order-A-17-edit",
        "priority": "batch",
    },
]


def _described(description: str, **keywords: Any) -> dict[str, Any]:
    """Schema keywords other languages can check before sending. Pydantic does not enforce them:
    the validators below do, with messages that name the limit."""
    return (
        {"description": description, "json_schema_extra": keywords}
        if keywords
        else {"description": description}
    )


# The fields that decide an edit (with its output): an idempotency key names one such edit.
FINGERPRINT_FIELDS = (
    "prompt",
    "negative_prompt",
    "images",
    "n",
    "size",
    "seed",
    "prompt_extend",
    "watermark",
)


class EditRequest(BaseModel):
    """One image edit: a text instruction applied to 1 to 3 reference images."""

    # `wanedit schema` prints model_json_schema(): this model is the enqueue contract's only source.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="wanedit edit request",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_ID,
            "examples": _EXAMPLES,
        },
    )

    prompt: str = Field(
        **_described(
            f"The edit instruction: 1 to {limits.PROMPT_MAX} characters, not only whitespace. "
            "Longer is refused rather than silently truncated by the provider. Refer to the "
            "images as Image 1, 2 and 3.",
            minLength=1,
            maxLength=limits.PROMPT_MAX,
        )
    )
    images: list[str] = Field(
        **_described(
            f"{limits.IMAGES_MIN} to {limits.IMAGES_MAX} image sources, in Image 1/2/3 order: "
            "https:// or http:// URLs (at most 4096 characters), s3://bucket/key objects (at "
            f"most {limits.IMAGE_BYTES_MAX // 1048576} MB), data:image/...;base64, URIs, or "
            "(Python API and CLI only) local paths. Decoded images must be JPEG, PNG without "
            f"alpha, BMP or WEBP, each side {limits.SIDE_MIN} to {limits.SIDE_MAX} px, at most "
            f"{limits.IMAGE_BYTES_MAX // 1048576} MB.",
            minItems=limits.IMAGES_MIN,
            maxItems=limits.IMAGES_MAX,
            items={"type": "string", "minLength": 1},
        )
    )
    negative_prompt: str | None = Field(
        None,
        **_described(
            f"What to avoid: at most {limits.NEGATIVE_PROMPT_MAX} characters.",
            maxLength=limits.NEGATIVE_PROMPT_MAX,
        ),
    )
    n: int = Field(
        1,
        strict=True,
        **_described(
            f"How many images to make: {limits.N_MIN} to {limits.N_MAX}, default 1 (the "
            "provider's own default of 4 costs four times as much).",
            minimum=limits.N_MIN,
            maximum=limits.N_MAX,
        ),
    )
    size: str | None = Field(
        None,
        **_described(
            "Output size W*H, for example 1280*1280: W*H from 768*768 to 1280*1280 pixels, "
            "aspect ratio 1:4 to 4:1. Default: the provider's choice.",
            pattern=r"^[0-9]{1,5}\*[0-9]{1,5}$",
        ),
    )
    prompt_extend: bool = Field(
        True, strict=True, description="Let the provider rewrite the prompt; default true."
    )
    watermark: bool = Field(
        False, strict=True, description="Add the provider's watermark; default false."
    )
    seed: int | None = Field(
        None,
        strict=True,
        **_described(
            f"Random seed: 0 to {limits.SEED_MAX}. Default: a random one.",
            minimum=0,
            maximum=limits.SEED_MAX,
        ),
    )
    output: str | None = Field(
        None,
        **_described(
            "Destination s3://bucket/prefix/ (a missing / is added). Default WANEDIT_OUTPUT_URI. "
            "The bucket must exist and be writable: checked before enqueueing.",
            pattern="^s3://",
        ),
    )
    metadata: dict[str, Any] | None = Field(
        None,
        description=(
            f"A JSON object returned in the job record and the completion event: at most "
            f"{limits.METADATA_BYTES_MAX} bytes encoded."
        ),
    )
    idempotency_key: str | None = Field(
        None,
        **_described(
            f"1 to {limits.IDEMPOTENCY_KEY_MAX} printable ASCII characters without spaces. The "
            "same key within 24 h returns the same job and never makes a second one.",
            minLength=1,
            maxLength=limits.IDEMPOTENCY_KEY_MAX,
            pattern="^[\\x21-\\x7e]+$",
        ),
    )
    # interactive: a person is waiting (the default here); batch: nightly and bulk work.
    priority: Literal["interactive", "batch"] = Field(
        "interactive",
        description=(
            "interactive (default): a person waits; batch: bulk work, served after interactive "
            "edits."
        ),
    )
    # Told when the job ends: a signed POST of the event, and/or a Celery task sent by name.
    callback_url: str | None = Field(
        None,
        description=(
            "http(s) URL that gets the completion event as a Standard Webhooks signed POST "
            "(default: the WANEDIT_WEBHOOK_URL setting)."
        ),
    )
    webhook_url: str | None = Field(
        None,
        description=(
            "Another name for callback_url, the same field: give either, or both with the same "
            "value (different values are refused). The stored request shows both."
        ),
    )
    on_complete: str | None = Field(
        None,
        description=(
            "Celery task name (dotted) sent the completion event as its one argument "
            "(default: the WANEDIT_ON_COMPLETE setting)."
        ),
    )
    on_complete_queue: str | None = Field(
        None, description="Queue for the on_complete task (default: Celery's default queue)."
    )

    @field_validator("callback_url", "webhook_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        return None if value is None else check_callback_url(value)

    @model_validator(mode="after")
    def _one_webhook(self) -> EditRequest:
        given = {self.callback_url, self.webhook_url} - {None}
        if len(given) > 1:
            # The values are not quoted: a webhook URL may carry a token.
            raise ValueError(
                "callback_url and webhook_url: two names of the same field, given different "
                "values; give one of them (or the same value in both)"
            )
        url = given.pop() if given else None
        # Frozen model: both names are filled here, once, so every reader sees the one URL.
        object.__setattr__(self, "callback_url", url)
        object.__setattr__(self, "webhook_url", url)
        return self

    @field_validator("on_complete")
    @classmethod
    def _on_complete(cls, value: str | None) -> str | None:
        return None if value is None else check_task_name(value)

    @field_validator("on_complete_queue")
    @classmethod
    def _on_complete_queue(cls, value: str | None) -> str | None:
        return None if value is None else check_queue_name(value)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > limits.PROMPT_MAX:
            raise ValueError(
                f"{len(value)} characters is over the provider's limit of {limits.PROMPT_MAX} "
                "(the provider would silently truncate it)"
            )
        return value

    @field_validator("negative_prompt")
    @classmethod
    def _negative_prompt(cls, value: str | None) -> str | None:
        if value is not None and len(value) > limits.NEGATIVE_PROMPT_MAX:
            raise ValueError(
                f"{len(value)} characters is over the provider's limit of "
                f"{limits.NEGATIVE_PROMPT_MAX}"
            )
        return value or None

    @field_validator("images")
    @classmethod
    def _images(cls, value: list[str]) -> list[str]:
        if not limits.IMAGES_MIN <= len(value) <= limits.IMAGES_MAX:
            raise ValueError(
                f"{len(value)} images given; the provider takes "
                f"{limits.IMAGES_MIN} to {limits.IMAGES_MAX}"
            )
        for index, source in enumerate(value):
            field = f"images[{index}]"
            if not source:
                raise ValueError(f"{field}: must not be empty")
            kind = source_kind(source)
            if kind is SourceKind.S3:
                try:
                    S3Location.parse_object(source)
                except ValueError as exc:
                    raise ValueError(f"{field}: {exc}") from None
            elif kind is SourceKind.URL:
                if len(source) > 4096:
                    raise ValueError(f"{field}: URL is longer than 4096 characters")
                if not _url_host(source):
                    raise ValueError(f"{field}: URL {source[:40]!r} has no valid host")
            elif kind is SourceKind.PATH:
                if "\x00" in source:
                    raise ValueError(f"{field}: a path must not contain NUL")
                scheme = _OTHER_SCHEME.match(source)
                if scheme and scheme.group(1).lower() != "file":
                    raise ValueError(
                        f"{field}: scheme {scheme.group(1)[:20]!r} is not accepted "
                        "(use https://, http://, s3://, data: or a local path)"
                    )
        return value

    @field_validator("n")
    @classmethod
    def _n(cls, value: int) -> int:
        if not limits.N_MIN <= value <= limits.N_MAX:
            raise ValueError(f"{value} is outside {limits.N_MIN} to {limits.N_MAX} images")
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None:
            parse_size(value)
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= limits.SEED_MAX:
            raise ValueError(f"{value} is outside 0 to {limits.SEED_MAX}")
        return value

    @field_validator("output")
    @classmethod
    def _output(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return str(S3Location.parse_prefix(value))

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            encoded = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be a JSON object ({exc})") from None
        if len(encoded.encode()) > limits.METADATA_BYTES_MAX:
            raise ValueError(
                f"{len(encoded.encode())} bytes of JSON is over the limit of "
                f"{limits.METADATA_BYTES_MAX}"
            )
        return value

    @field_validator("idempotency_key")
    @classmethod
    def _idempotency_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not 1 <= len(value) <= limits.IDEMPOTENCY_KEY_MAX:
            raise ValueError(f"must be 1 to {limits.IDEMPOTENCY_KEY_MAX} characters")
        if not _IDEMPOTENCY_KEY.fullmatch(value):
            raise ValueError("must be printable ASCII without spaces")
        return value

    def fingerprint(self, output: str) -> str:
        """What an idempotency key is checked against: sha256 of the canonical JSON of the
        fields that decide the edit and where it is written (`output`: the resolved prefix).
        Priority, metadata and the completion targets are not in it: a request sent again
        with another of those returns the first job as it was made."""
        edit = {name: getattr(self, name) for name in FINGERPRINT_FIELDS}
        edit["output"] = output
        text = json.dumps(edit, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def provider_input(self, images: list[str]) -> dict[str, Any]:
        """The `input` and `parameters` of a create call, with images already resolved."""
        input_: dict[str, Any] = {"prompt": self.prompt, "images": images}
        if self.negative_prompt:
            input_["negative_prompt"] = self.negative_prompt
        # n is always sent: the provider's own default of 4 costs four times as much.
        parameters: dict[str, Any] = {
            "n": self.n,
            "prompt_extend": self.prompt_extend,
            "watermark": self.watermark,
        }
        if self.size:
            parameters["size"] = self.size
        if self.seed is not None:
            parameters["seed"] = self.seed
        return {"input": input_, "parameters": parameters}


def remote_problems(request: EditRequest) -> list[str]:
    """Sources a worker cannot take: local paths, which only the producer's own machine has."""
    return [
        f"images[{index}]: local path {source[:60]!r} is not accepted from a message "
        "(a worker reads no local files); send s3://, https:// or data: sources"
        for index, source in enumerate(request.images)
        if source_kind(source) is SourceKind.PATH
    ]


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "request"


def format_errors(error: ValidationError) -> list[str]:
    """One line per problem: the field, what is wrong, and the limit."""
    problems = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        field = _field_name(tuple(item["loc"]))
        if item["type"] == "extra_forbidden":
            message = "is not a field of an edit request"
        # Messages of list validators already start with the element, e.g. "images[1]: ...".
        problems.append(message if message.startswith(f"{field}[") else f"{field}: {message}")
    return problems


def parse_request(data: EditRequest | dict[str, Any]) -> EditRequest:
    """Validate a request; every problem is reported at once as InvalidRequest."""
    if isinstance(data, EditRequest):
        return data
    try:
        return EditRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(format_errors(exc)) from None
