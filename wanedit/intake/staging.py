"""Checking image sources and staging local files and data URIs into S3.

Everything is checked first; only a request with no problem at all is uploaded, so a bad
request leaves nothing behind. Broker messages then carry S3 references, never image bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanedit import limits
from wanedit.errors import BackendUnavailable, InvalidRequest
from wanedit.images import ImageInfo, decode_data_uri, inspect_image
from wanedit.request import SourceKind, source_kind
from wanedit.s3errors import S3_EXCEPTIONS, S3Failure, S3Problem, classify_s3_error
from wanedit.storage import S3Location


@dataclass(frozen=True)
class _Upload:
    index: int
    data: bytes
    info: ImageInfo


def local_path(
    source: str, field: str, input_dirs: Sequence[Path], trusted_files: Collection[Path] = ()
) -> Path:
    """The real path of a local source, if it may be read: below one of `input_dirs` (the
    WANEDIT_LOCAL_INPUT_DIRS setting) or one of `trusted_files`, after symlinks and '..'."""
    path = Path(source.removeprefix("file://")).expanduser().resolve()
    if path in trusted_files:
        return path
    if any(path.is_relative_to(directory.resolve()) for directory in input_dirs):
        return path
    if input_dirs:
        allowed = ", ".join(str(directory) for directory in input_dirs)
        why = f"is outside WANEDIT_LOCAL_INPUT_DIRS ({allowed})"
    else:
        why = (
            "cannot be read: WANEDIT_LOCAL_INPUT_DIRS is empty, so the Python API reads no local "
            "files (list their directory there, or pass s3://, https:// or data: sources)"
        )
    shown = source if str(path) == source else f"{source} (resolves to {path})"
    raise ValueError(f"{field}: local file {shown} {why}")


def _read_local(source: str, field: str, path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValueError(f"{field}: cannot read local file {source!r} ({exc.strerror})") from None
    if not path.is_file():
        raise ValueError(f"{field}: {source!r} is not a regular file")
    if size > limits.IMAGE_BYTES_MAX:
        mb = limits.IMAGE_BYTES_MAX // (1024 * 1024)
        raise ValueError(
            f"{field}: {size / 1048576:.1f} MB is over the provider's limit of {mb} MB"
        )
    try:
        with open(path, "rb") as handle:
            return handle.read(limits.IMAGE_BYTES_MAX + 1)
    except OSError as exc:
        raise ValueError(f"{field}: cannot read local file {source!r} ({exc.strerror})") from None


def _unavailable(failure: S3Failure, subject: str) -> BackendUnavailable:
    """S3 cannot serve us now, or not as configured: not the request's fault, nothing kept."""
    return BackendUnavailable(failure.describe(subject))


def _check_s3(source: str, field: str, s3: Any) -> None:
    location = S3Location.parse_object(source)
    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
    except S3_EXCEPTIONS as exc:
        failure = classify_s3_error(exc)
        if failure.problem is S3Problem.MISSING:
            raise ValueError(f"{field}: {source} does not exist") from None
        if failure.problem is S3Problem.DENIED:
            raise ValueError(f"{field}: {source} is not readable with our credentials") from None
        if failure.request_fault:
            raise ValueError(f"{field}: {failure.describe(source)}") from None
        raise _unavailable(failure, source) from None
    size = int(head.get("ContentLength", 0))
    if size > limits.IMAGE_BYTES_MAX:
        raise ValueError(f"{field}: {size / 1048576:.1f} MB is over the provider's limit of 10 MB")


def check_output(output: S3Location, s3: Any, known: set[str]) -> None:
    """Refuse a destination bucket we cannot write to before the edit is paid for."""
    if output.bucket in known:
        return
    try:
        s3.head_bucket(Bucket=output.bucket)
    except S3_EXCEPTIONS as exc:
        failure = classify_s3_error(exc)
        bucket = f"bucket {output.bucket!r}"
        if failure.problem is S3Problem.MISSING:
            raise InvalidRequest([f"output: {bucket} does not exist"]) from None
        if failure.problem is S3Problem.DENIED:
            raise InvalidRequest(
                [f"output: {bucket} is not accessible with our credentials"]
            ) from None
        if failure.request_fault:
            raise InvalidRequest([f"output: {failure.describe(bucket)}"]) from None
        raise _unavailable(failure, f"s3://{output.bucket}") from None
    known.add(output.bucket)


def check_sources(
    images: list[str],
    s3: Any,
    *,
    input_dirs: Sequence[Path] = (),
    trusted_files: Collection[Path] = (),
) -> list[_Upload | None]:
    """Check every source; returns what must be uploaded, or raises InvalidRequest with all
    problems at once. Local files are read only below `input_dirs` or from `trusted_files`."""
    problems: list[str] = []
    uploads: list[_Upload | None] = []
    for index, source in enumerate(images):
        field = f"images[{index}]"
        kind = source_kind(source)
        try:
            if kind is SourceKind.PATH:
                path = local_path(source, field, input_dirs, trusted_files)
                data = _read_local(source, field, path)
                uploads.append(_Upload(index, data, inspect_image(data, field)))
            elif kind is SourceKind.DATA:
                data = decode_data_uri(source, field)
                uploads.append(_Upload(index, data, inspect_image(data, field)))
            elif kind is SourceKind.S3:
                _check_s3(source, field, s3)
                uploads.append(None)
            else:
                uploads.append(None)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidRequest(problems)
    return uploads


def stage_images(
    images: list[str],
    job_id: str,
    staging: S3Location,
    s3: Any,
    *,
    input_dirs: Sequence[Path] = (),
    trusted_files: Collection[Path] = (),
) -> list[str]:
    """Return the sources with local files and data URIs replaced by staged `s3://` URIs."""
    uploads = check_sources(images, s3, input_dirs=input_dirs, trusted_files=trusted_files)
    sources = list(images)
    written: list[S3Location] = []
    try:
        for upload in uploads:
            if upload is None:
                continue
            target = staging.child(job_id, f"input-{upload.index}.{upload.info.extension}")
            s3.put_object(
                Bucket=target.bucket,
                Key=target.key,
                Body=upload.data,
                ContentType=upload.info.mime,
            )
            written.append(target)
            sources[upload.index] = str(target)
    except S3_EXCEPTIONS as exc:
        unstage(written, s3)
        failure = classify_s3_error(exc)
        if not failure.request_fault:
            raise _unavailable(failure, f"staging inputs into {staging}") from None
        raise InvalidRequest([f"staging: {failure.describe(str(staging))}"]) from None
    return sources


def unstage(locations: list[S3Location], s3: Any) -> None:
    """Best-effort removal of staged inputs of a request that was not enqueued, or of a job
    that has ended."""
    for location in locations:
        with contextlib.suppress(*S3_EXCEPTIONS):
            s3.delete_object(Bucket=location.bucket, Key=location.key)


def staged_locations(sources: list[str], staging: S3Location, job_id: str) -> list[S3Location]:
    prefix = f"s3://{staging.bucket}/{staging.key}{job_id}/"
    return [S3Location.parse_object(s) for s in sources if s.startswith(prefix)]


__all__ = ["check_sources", "local_path", "stage_images", "staged_locations", "unstage"]
