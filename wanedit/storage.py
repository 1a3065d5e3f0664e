"""S3 addresses: parsing `s3://bucket/key` URIs and building deterministic keys. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

# S3 bucket naming rules, simplified: 3-63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
KEY_BYTES_MAX = 1024  # S3's own limit
# A destination or staging prefix leaves room for `{job_id}/{name}` under S3's key limit.
PREFIX_BYTES_MAX = 512


def _check_key(key: str, what: str) -> str:
    if _CONTROL.search(key):
        raise ValueError(f"{what} must not contain control characters")
    if key.startswith("/"):
        raise ValueError(f"{what} must not start with '/'")
    segments = key.split("/")
    if any(part in ("..", ".") for part in segments):
        raise ValueError(f"{what} must not contain '.' or '..' path segments")
    if "" in segments[:-1]:
        raise ValueError(f"{what} must not contain empty path segments ('//')")
    if len(key.encode()) > KEY_BYTES_MAX:
        raise ValueError(f"{what} is longer than S3's {KEY_BYTES_MAX}-byte key limit")
    return key


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (an object) or a key prefix (ending in '/', or empty)."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Parse `s3://bucket/key`; raises ValueError naming the problem."""
        if not uri.startswith("s3://"):
            raise ValueError(f"must start with s3:// (got {uri[:40]!r})")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not _BUCKET.match(bucket):
            raise ValueError(f"bucket {bucket[:70]!r} is not a valid S3 bucket name")
        return cls(bucket, _check_key(key, "the key"))

    @classmethod
    def parse_object(cls, uri: str) -> S3Location:
        location = cls.parse(uri)
        if not location.key or location.key.endswith("/"):
            raise ValueError("must name an object, like s3://bucket/path/image.png")
        return location

    @classmethod
    def parse_prefix(cls, uri: str) -> S3Location:
        """Parse a destination prefix; a missing trailing '/' is added."""
        location = cls.parse(uri)
        if location.key and not location.key.endswith("/"):
            location = cls(location.bucket, location.key + "/")
        if len(location.key.encode()) > PREFIX_BYTES_MAX:
            raise ValueError(f"the prefix is longer than {PREFIX_BYTES_MAX} bytes")
        return location

    def child(self, *parts: str) -> S3Location:
        """The object under this prefix at the joined parts (each checked, none may hold '/')."""
        for part in parts:
            if not part or "/" in part:
                raise ValueError(f"key part {part!r} must be non-empty and hold no '/'")
        return S3Location(self.bucket, _check_key(self.key + "/".join(parts), "the key"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def output_location(prefix: S3Location, job_id: str, index: int) -> S3Location:
    """Where result `index` of a job lands: `{prefix}{job_id}/{index}.png`, on every run."""
    return prefix.child(job_id, f"{index}.png")


def thumbnail_location(output: S3Location) -> S3Location:
    """Where the small JPEG of a result lands: beside it, `{stem}.thumb.jpg`, on every run."""
    head, _, name = output.key.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return S3Location(output.bucket, _check_key(f"{head}/{stem}.thumb.jpg".lstrip("/"), "the key"))
