"""Log lines: JSON objects with the job id, and no secret in either format."""

from __future__ import annotations

import json
import logging
import re

import pytest

from wanedit.logs import JobContext, JsonFormatter, redact

JOB = "0123456789abcdef0123456789abcdef"


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("wanedit.workers", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def formatted(made: logging.LogRecord, secrets: tuple[str, ...] = ()) -> dict:
    assert JobContext(lambda: secrets).filter(made)
    return json.loads(JsonFormatter().format(made))


@pytest.mark.parametrize(
    ("made", "job_id"),
    [
        (record("job %s: running at the provider", JOB), JOB),
        (record("job %s: %s -> %s", JOB, "queued", "submitted"), JOB),
        # Given explicitly, the field wins over the message.
        (record("slot given back", job_id=JOB), JOB),
        # Not a job id (an account, a batch): no job_id field.
        (record("job %s: oops", "not-an-id"), None),
        (record("account %s: list watch error %s", "sg", "boom"), None),
        (record("admission reclaimed %d expired slot leases", 2), None),
        # Celery's own line about a task: the job id is its first argument.
        (
            record("Task wanedit.poll[%(id)s] received", data={"args": f"('{JOB}', True)"}),
            JOB,
        ),
        (record("Task wanedit.watch received", data={"args": "('default', True)"}), None),
    ],
)
def test_json_lines_carry_the_job_id_when_there_is_one(made, job_id):
    line = formatted(made)
    assert line.get("job_id") == job_id
    assert line["level"] == "INFO"
    assert line["logger"] == "wanedit.workers"
    assert line["message"] == made.getMessage()
    assert line["ts"].endswith("+00:00")


def test_a_line_has_the_same_keys_as_ever():
    line = formatted(record("admission reclaimed %d expired slot leases", 2))
    assert list(line) == ["ts", "level", "logger", "message", "process"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])
    named = formatted(record("job %s: ok", JOB, to_status="running"))
    assert list(named) == ["ts", "level", "logger", "message", "job_id", "process", "to_status"]


def test_extra_fields_are_kept_and_exceptions_are_one_field():
    made = record("job %s: %s -> %s", JOB, "running", "failed", from_status="running")
    line = formatted(made)
    assert line["from_status"] == "running"
    try:
        raise ValueError("bad thing")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    line = formatted(failed)
    assert line["level"] == "ERROR"
    assert "ValueError: bad thing" in line["exc"]
    assert set(line) >= {"ts", "level", "logger", "message", "exc"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET https://dashscope-result.oss.example.com/a.png?Expires=1764&OSSAccessKeyId=LTAI5&"
            "Signature=abc%2Bdef",
            "GET https://dashscope-result.oss.example.com/a.png?Expires=1764&OSSAccessKeyId=***&"
            "Signature=***",
        ),
        (
            "s3 https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&"
            "X-Amz-Signature=deadbeef failed",
            "s3 https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=***&"
            "X-Amz-Signature=*** failed",
        ),
        ("Authorization: Bearer sk-abc123", "Authorization: Bearer ***"),
        (
            "connect redis://:hunter22@10.0.0.5:6379/0 refused",
            "connect redis://***@10.0.0.5:6379/0 refused",
        ),
        ("nothing secret here: job 42 ok", "nothing secret here: job 42 ok"),
    ],
)
def test_signatures_tokens_and_url_passwords_are_masked(text, expected):
    assert redact(text) == expected


def test_a_malformed_log_call_is_left_to_the_handler_to_report():
    broken = record("job %s: %d images", JOB, "not a number")
    assert JobContext().filter(broken)
    assert broken.job_id == JOB
    with pytest.raises(TypeError):
        broken.getMessage()


def test_known_secrets_are_masked_in_message_and_traceback_in_both_formats():
    secret = "sk-live-0123456789"
    try:
        raise RuntimeError(f"provider said {secret}")
    except RuntimeError:
        import sys

        info = sys.exc_info()
    made = logging.LogRecord("x", logging.ERROR, __file__, 1, "key %s", (secret,), info)
    assert JobContext(lambda: (secret,)).filter(made)
    text = logging.Formatter("%(message)s").format(made)
    as_json = JsonFormatter().format(made)
    for written in (text, as_json):
        assert secret not in written
        assert "***" in written


SECRET_ARG = "caller-token-5f3a9c"  # known to no one but the caller: no redaction list has it


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_celery_task_lines_never_write_task_arguments(log_format):
    """Celery's own received/succeeded/failed lines, through Celery's own logging calls."""
    import io

    from celery.app import trace

    from wanedit.logs import apply

    stream = io.StringIO()
    logger = logging.getLogger("celery.app.trace")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    apply(logger, log_format, tuple)
    request = {"prompt": "p", "images": ["https://x/a.png"], "metadata": {"token": SECRET_ARG}}
    base = {"id": "t-1", "name": "wanedit.enqueue", "args": repr((request, JOB))}
    try:
        trace.info(trace.LOG_RECEIVED, {**base, "kwargs": repr({"extra": SECRET_ARG})})
        trace.info(trace.LOG_SUCCESS, {**base, "runtime": 0.1, "return_value": repr(SECRET_ARG)})
        trace.info(trace.LOG_RECEIVED, {"id": "t-2", "name": "wanedit.poll", "args": repr((JOB,))})
        trace.info(trace.LOG_RECEIVED, {**base, "name": "wanedit.poll", "args": repr((JOB, 3))})
        logger.error(
            "Received unregistered task of type %r.\n"
            "The full contents of the message body was:\n%s",
            "evil.task",
            repr(((request,), {}, {})),
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    written = stream.getvalue()
    assert written.count("\n") >= 5
    assert SECRET_ARG not in written
    if log_format == "json":
        lines = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
        received, succeeded, alone, poll = lines[:4]
        assert received["data"]["args"] == "***" and received["data"]["kwargs"] == "***"
        assert succeeded["message"].endswith(": ***")
        assert alone["data"]["args"] == f"('{JOB}',)" and alone["job_id"] == JOB
        assert poll["data"]["args"] == f"('{JOB}', ***)" and poll["job_id"] == JOB


def test_extra_fields_lose_known_secrets():
    secret = "sk-live-0123456789"
    line = formatted(
        record("job %s: ok", JOB, detail=f"key {secret}", data={"x": secret}), (secret,)
    )
    assert secret not in json.dumps(line)
    assert line["detail"] == "key ***"
