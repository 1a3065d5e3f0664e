"""Log lines: plain text for people, or one JSON object per line (WANEDIT_LOG_FORMAT=json).

Every line about a job carries its id as the field `job_id`; every line has secrets (keys,
passwords, URL signatures) replaced by `***` before it is written, in either format.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger import json as jsonlogger

from wanedit.ids import is_job_id

TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
# Query parameters that sign a URL (S3 presigned, OSS, the sandbox), and bearer tokens.
_SIGNED = re.compile(
    r"(?i)((?:[?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|"
    r"OSSAccessKeyId|security-token)=)|(?:Bearer\s+))[^&\s\"'<>]+"
)
# Celery's lines about a task carry its arguments' repr as `data["args"]`: ('<job id>', ...)
# (or a list, as a message sent with `send_task(args=[...])` writes it).
_FIRST_ARG = re.compile(r"[(\[]\s*'([0-9a-f]{32})'")
_URL_PASSWORD = re.compile(r"(?i)\b(rediss?|amqps?|https?)://[^/\s@]*:[^/\s@]*@")
# Celery quotes a whole message it cannot use (an unknown task, an invalid message): its body
# carries the task's arguments.
_MESSAGE_BODY = re.compile(r"(?s)(The full contents of the message body was:?)\s*\S.*")
# What every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "job_id",
}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets, URL signatures, bearer tokens or URL passwords."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    text = _SIGNED.sub(lambda match: match.group(1) + "***", text)
    return _URL_PASSWORD.sub(lambda match: f"{match.group(1)}://***@", text)


def _celery_job_id() -> str | None:
    """The job id a running Celery task was given as its first argument, if it was one."""
    try:
        from celery import current_task

        args = current_task.request.args if current_task else None
    except Exception:  # outside a worker, or no request yet: no job to name
        return None
    if args and is_job_id(args[0]):
        return str(args[0])
    return None


def _task_context(data: dict[str, Any], job_id: str | None) -> dict[str, Any]:
    """Celery's context of a task line (`received`, `succeeded`, `raised`, `retry`) without the
    task's arguments or return value: they are the caller's (`wanedit.enqueue` takes a whole
    request) and may carry anything. A leading job id stays, so a line still names its job."""
    clean = dict(data)
    if "args" in clean:
        args = str(clean["args"])
        if job_id and args in (f"('{job_id}',)", f"['{job_id}']"):
            clean["args"] = args
        elif job_id and _FIRST_ARG.match(args):
            clean["args"] = f"('{job_id}', ***)"
        else:
            clean["args"] = args if args in ("()", "[]") else "***"
    if "kwargs" in clean:
        clean["kwargs"] = "{}" if str(clean["kwargs"]) == "{}" else "***"
    if "return_value" in clean:
        value = str(clean["return_value"])
        kept = value == "None" or (value.strip("'") == job_id and job_id is not None)
        clean["return_value"] = value if kept else "***"
    return clean


def _clean_extra(record: logging.LogRecord, secrets: list[str]) -> None:
    """Fields given with `extra=` (Celery's `data` among them) without task arguments or
    secrets, so the JSON formatter writes them clean."""
    for name, value in list(record.__dict__.items()):
        if name in _STANDARD:
            continue
        if name == "data" and isinstance(value, dict):
            value = _task_context(value, getattr(record, "job_id", None))
            if record.args is record.__dict__["data"]:
                record.args = value  # the message is formatted from the same context
        if isinstance(value, str):
            value = redact(value, secrets)
        elif isinstance(value, dict):
            value = {k: redact(v, secrets) if isinstance(v, str) else v for k, v in value.items()}
        record.__dict__[name] = value


def _task_line_job_id(record: logging.LogRecord) -> str | None:
    data = getattr(record, "data", None)
    args = data.get("args") if isinstance(data, dict) else None
    match = _FIRST_ARG.match(args) if isinstance(args, str) else None
    return match.group(1) if match else None


class JobContext(logging.Filter):
    """Adds `job_id` to a record and takes secrets out of its text, its `extra=` fields and
    Celery's task lines (whose task arguments and return values are never written).

    The id comes from `extra={"job_id": ...}`, else from a message in the house style
    (`"job %s: ..."`, the id first), else from the arguments Celery's own task lines show
    (`received`, `succeeded`), else from the Celery task being run."""

    def __init__(self, secrets: Callable[[], Iterable[str]] = tuple) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_job_id(getattr(record, "job_id", None)):
            args = record.args
            first = args[0] if isinstance(args, tuple) and args else None
            if isinstance(record.msg, str) and record.msg.startswith("job %s") and is_job_id(first):
                record.job_id = first
            else:
                record.job_id = _task_line_job_id(record) or _celery_job_id()
        secrets = list(self._secrets())
        _clean_extra(record, secrets)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: the handler reports it, as logging always does
            return True
        clean = _MESSAGE_BODY.sub(lambda match: match.group(1) + " ***", redact(message, secrets))
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True


class JsonFormatter(jsonlogger.JsonFormatter):
    """One JSON object per line: ts, level, logger, message, job_id, process, then any extra
    fields (`extra=`, Celery's `data`) and `exc` for a traceback."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message", "job_id", "processName"],
            rename_fields={
                "asctime": "ts",
                "levelname": "level",
                "name": "logger",
                "processName": "process",
                "exc_info": "exc",
            },
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        if not log_data.get("job_id"):
            del log_data["job_id"]  # a line about no job has no job_id field
        if record.exc_text:
            # JobContext left the traceback's text without secrets: write that one, not a
            # fresh rendering of exc_info.
            log_data["exc"] = record.exc_text


def signal_line(message: str, logger: str) -> str:
    """A JSON line built without logging's locks, for code that runs in a signal handler.

    Built by hand on purpose: a formatter needs a LogRecord and a handler's lock, which a
    signal may have interrupted mid-write. Its keys are the JSON formatter's first four."""
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "WARNING",
        "logger": logger,
        "message": message.strip(),
    }
    return json.dumps(line) + "\n"


def apply(logger: logging.Logger, log_format: str, secrets: Callable[[], Iterable[str]]) -> None:
    """Give every handler of `logger` the job filter and, for `json`, the JSON formatter."""
    for handler in logger.handlers:
        if not any(isinstance(item, JobContext) for item in handler.filters):
            handler.addFilter(JobContext(secrets))
        if log_format == "json":
            handler.setFormatter(JsonFormatter())


def configure(log_format: str, level: int = logging.INFO, secrets: Iterable[str] = ()) -> None:
    """Set up the root logger of a process that is not a Celery worker (the CLI, say)."""
    handler = logging.StreamHandler()
    text = logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(JsonFormatter() if log_format == "json" else text)
    kept = tuple(secrets)
    handler.addFilter(JobContext(lambda: kept))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


def settings_secrets(settings: Any) -> list[str]:
    """Every secret the settings hold, as text: what must never be written to a log."""
    from urllib.parse import urlsplit

    found: list[str] = []
    for account in settings.accounts:
        if account.api_key is not None:
            found.append(account.api_key.get_secret_value())
    aws = (settings.aws_secret_access_key, settings.aws_session_token)
    tokens = (settings.listen_token, getattr(settings, "provider_events_token", None))
    for secret in (settings.webhook_secret, *tokens, *aws):
        if secret is not None:
            value = secret.get_secret_value()
            found += [value, value.removeprefix("whsec_")]
    try:
        password = urlsplit(settings.redis_url).password
    except ValueError:
        password = None
    if password:
        found.append(password)
    return [value for value in found if len(value) >= 4]
