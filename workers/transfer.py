"""Moving bytes: handing S3 inputs to the provider, and streaming results into S3."""

from __future__ import annotations

import contextlib
import io
import socket
from typing import Any
from urllib.parse import quote, urljoin

import requests

from wanedit import limits
from wanedit.errors import (
    StorageError,
    TerminalProviderError,
    TerminalStorageError,
    TransientProviderError,
    TransientStorageError,
    UrlNotAllowed,
)
from wanedit.images import MIME_BY_FORMAT, check_size, encode_data_uri
from wanedit.request import SourceKind, source_kind
from wanedit.s3errors import S3_EXCEPTIONS, classify_s3_error
from wanedit.storage import S3Location, output_location
from wanedit.urlguard import Resolver, parse_target
from wanedit.workers.pinned import BODY_ERRORS, guarded_request
from wanedit.workers.provider import ResultItem

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# S3 user metadata is limited to 2 KB in all, ASCII only.
METADATA_PROMPT_MAX = 1500
MAX_REDIRECTS = 5


def _storage_error(exc: Exception, subject: str) -> StorageError:
    failure = classify_s3_error(exc)
    kind = TransientStorageError if failure.transient else TerminalStorageError
    return kind(failure.describe(subject))


def resolve_image(source: str, s3: Any, transport: str, presign_ttl: int) -> str:
    """What the provider is given for one input: URLs pass through; S3 objects are presigned
    (once S3 has said the object is there and within the size limit) or inlined as a data URI
    (for a private bucket the provider cannot reach).

    A worker never reads a local path named in a message: only producers read local files."""
    kind = source_kind(source)
    if kind is SourceKind.PATH:
        raise ValueError(
            f"input {source[:200]!r} is a local path; workers never read local files "
            "(producers stage them into S3)"
        )
    if kind is not SourceKind.S3:
        return source
    location = S3Location.parse_object(source)
    try:
        if transport == "inline":
            answer = s3.get_object(Bucket=location.bucket, Key=location.key)
            check_size(int(answer.get("ContentLength", 0)), source)
            data = answer["Body"].read()
            mime = answer.get("ContentType") or "image/png"
            if mime not in MIME_BY_FORMAT.values():
                mime = "image/png"
            return encode_data_uri(data, mime)
        # Looked at first: a missing or oversized object, or S3 being down, is known here, rather
        # than from a create the provider refuses (its download failing, a 400 that is paid for
        # in quota and retried at most once).
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
        check_size(int(head.get("ContentLength", 0)), source)
        return str(
            s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": location.bucket, "Key": location.key},
                ExpiresIn=presign_ttl,
            )
        )
    except S3_EXCEPTIONS as exc:
        raise _storage_error(exc, f"input {source}") from None


class _BodyBroken(Exception):
    """Reading the result's body failed: cut short, stalled, reset or garbled."""


class _PngStream(io.RawIOBase):
    """Passes a response body through, refusing it unless it starts with the PNG signature, and
    stopping once it is over `limit` bytes."""

    def __init__(
        self, raw: Any, limit: int = limits.RESULT_BYTES_MAX, copy: io.BytesIO | None = None
    ) -> None:
        self._raw = raw
        self._limit = limit
        self._copy = copy
        self._checked = False
        self.size = 0

    def readable(self) -> bool:
        return True

    def _read(self, amount: int) -> bytes:
        try:
            return bytes(self._raw.read(amount))
        except BODY_ERRORS as exc:
            raise _BodyBroken(f"{type(exc).__name__}: {str(exc)[:300]}") from None

    def readinto(self, buffer: Any) -> int:
        # Never more than one byte past the limit is read.
        want = min(len(buffer), self._limit + 1 - self.size)
        data = self._read(want) if want > 0 else b""
        if not self._checked:
            while len(data) < len(PNG_SIGNATURE):
                more = self._read(want - len(data))
                if not more:
                    break
                data += more
            if not data.startswith(PNG_SIGNATURE):
                raise ValueError("the result is not a PNG image")
            self._checked = True
        self.size += len(data)
        if self.size > self._limit:
            raise ValueError(f"the result is over the limit of {_mib(self._limit)} per image")
        buffer[: len(data)] = data
        if self._copy is not None:
            self._copy.write(data)
        return len(data)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


def guarded_get(
    session: requests.Session,
    url: str,
    *,
    allow_private: bool,
    timeout: tuple[float, float],
    max_redirects: int = MAX_REDIRECTS,
    resolve: Resolver = socket.getaddrinfo,
) -> requests.Response:
    """GET `url` as a stream, checking it and every redirect hop against the URL guard and
    connecting to the address each hop was checked at.

    Redirects are followed here, one checked hop at a time, never by requests itself."""
    for _ in range(max_redirects + 1):
        response = guarded_request(
            session, "GET", url, allow_private=allow_private, timeout=timeout, resolve=resolve
        )
        if not response.is_redirect:
            return response
        location = response.headers.get("location", "")
        response.close()
        url = urljoin(url, location)
    host = "?"
    with contextlib.suppress(UrlNotAllowed):
        host = parse_target(url).host
    raise UrlNotAllowed(host, f"more than {max_redirects} redirects")


def copy_result(
    item: ResultItem,
    index: int,
    *,
    job_id: str,
    provider_task_id: str,
    prefix: S3Location,
    s3: Any,
    downloads: requests.Session,
    timeout: tuple[float, float],
    allow_private: bool = False,
    resolve: Resolver = socket.getaddrinfo,
    copy: io.BytesIO | None = None,
) -> S3Location:
    """Stream one result image from its URL into S3; the bytes pass through once, at most
    `limits.RESULT_BYTES_MAX` of them (and into `copy` as well, when one is given).

    The URL (and each redirect) must pass the URL guard: a refused one is a terminal
    `UrlNotAllowed` output error, never retried. A body cut short, stalled or reset is a
    transient `DownloadFailed`; S3 failing under the upload is a storage error."""
    assert item.url is not None
    target = output_location(prefix, job_id, index)
    try:
        response = guarded_get(
            downloads, item.url, allow_private=allow_private, timeout=timeout, resolve=resolve
        )
    except UrlNotAllowed as exc:
        raise TerminalProviderError(
            exc.code, f"result {index}: refused to fetch from {exc}"
        ) from None
    except (
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        requests.exceptions.InvalidURL,
    ) as exc:
        # No retry can fetch "not a url", "ftp://..." or "http://".
        raise TerminalProviderError(
            "InvalidResult", f"result {index}: the result URL cannot be fetched ({exc})"
        ) from None
    except (requests.RequestException, OSError) as exc:
        raise TransientProviderError("DownloadFailed", f"result {index}: {exc}") from None
    with response:
        if response.status_code in (403, 404, 410):
            raise TerminalProviderError(
                "ResultExpired",
                f"result {index}: the result URL answered HTTP {response.status_code} "
                "(it expired or was never valid)",
                http_status=response.status_code,
            )
        if response.status_code >= 400:
            raise TransientProviderError(
                "DownloadFailed",
                f"result {index}: HTTP {response.status_code}",
                http_status=response.status_code,
            )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.RESULT_BYTES_MAX:
            raise TerminalProviderError(
                "InvalidResult",
                f"result {index}: {_mib(int(declared))} is over the limit of "
                f"{_mib(limits.RESULT_BYTES_MAX)} per image",
            )
        response.raw.decode_content = True
        stream = io.BufferedReader(_PngStream(response.raw, copy=copy), buffer_size=256 * 1024)
        metadata = {
            "job-id": job_id,
            "provider-task-id": provider_task_id,
            "actual-prompt": quote(item.actual_prompt or "", safe=" ,.")[:METADATA_PROMPT_MAX],
        }
        try:
            s3.upload_fileobj(
                stream,
                target.bucket,
                target.key,
                ExtraArgs={"ContentType": "image/png", "Metadata": metadata},
            )
        except ValueError as exc:
            raise TerminalProviderError("InvalidResult", f"result {index}: {exc}") from None
        except _BodyBroken as exc:
            raise TransientProviderError("DownloadFailed", f"result {index}: {exc}") from None
        except S3_EXCEPTIONS as exc:
            raise _storage_error(exc, f"result {index} destination {target}") from None
        except BODY_ERRORS as exc:
            # Not the download's body (that is _BodyBroken): the upload's own transport.
            failure = classify_s3_error(exc)
            raise TransientStorageError(
                failure.describe(f"result {index} destination {target}")
            ) from None
    return target
