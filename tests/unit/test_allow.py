"""What a request may name: the allow-lists as tables, at intake and in the worker."""

from __future__ import annotations

import json
import os

import pytest

from wanedit.config.allow import (
    NotAllowed,
    check_job,
    check_output,
    check_request,
    request_problems,
    task_refusal,
)
from wanedit.config.settings import Settings, load_settings
from wanedit.errors import ConfigError, InvalidRequest
from wanedit.request import EditRequest
from wanedit.storage import S3Location
from wanedit.webhooks import Targets

OUT = S3Location.parse_prefix("s3://out/edits/")


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables say every setting they depend on: none comes from the process environment
    (a suite's stack may have left listen rules or allow-lists there)."""
    for name in list(os.environ):
        if name.startswith("WANEDIT_") and name != "WANEDIT_ENV_FILE":
            monkeypatch.delenv(name)


def settings(**values: object) -> Settings:
    return Settings(output_uri="s3://out/edits/", **values)  # type: ignore[arg-type]


def request(**fields: object) -> EditRequest:
    return EditRequest.model_validate({"prompt": "p", "images": ["https://x/a.png"], **fields})


@pytest.mark.parametrize(
    ("values", "fields", "output", "problems"),
    [
        # Empty lists: the configured output bucket only, and no task but WANEDIT_ON_COMPLETE.
        ({}, {}, OUT, []),
        ({}, {"images": ["s3://out/in/a.png"]}, OUT, []),
        (
            {},
            {"images": ["https://x/a.png", "s3://theirs/a.png"]},
            OUT,
            [
                "images[1]: input bucket 'theirs' is not allowed (allowed: out; the setting "
                "WANEDIT_INPUT_BUCKETS adds more)"
            ],
        ),
        (
            {},
            {},
            S3Location.parse_prefix("s3://theirs/x/"),
            [
                "output: output bucket 'theirs' is not allowed (allowed: out; the setting "
                "WANEDIT_OUTPUT_BUCKETS adds more)"
            ],
        ),
        (
            {},
            {"on_complete": "their.tasks.run"},
            OUT,
            [
                "on_complete: task 'their.tasks.run' is not allowed (allowed: none; the setting "
                "WANEDIT_ON_COMPLETE_TASKS adds more)"
            ],
        ),
        (
            {},
            {"on_complete_queue": "wanedit"},
            OUT,
            [
                "on_complete_queue: queue 'wanedit' is not allowed (allowed: celery; the setting "
                "WANEDIT_ON_COMPLETE_QUEUES adds more)"
            ],
        ),
        # The lists allow more; `*` allows any.
        ({"input_buckets": ["theirs"]}, {"images": ["s3://theirs/a.png"]}, OUT, []),
        ({"input_buckets": ["*"]}, {"images": ["s3://any/a.png"]}, OUT, []),
        ({"output_buckets": ["theirs"]}, {}, S3Location.parse_prefix("s3://theirs/x/"), []),
        # An allowed output bucket may be read from too (staged inputs live there).
        ({"output_buckets": ["theirs"]}, {"images": ["s3://theirs/a.png"]}, OUT, []),
        ({"on_complete_tasks": ["app.tasks.done"]}, {"on_complete": "app.tasks.done"}, OUT, []),
        ({"on_complete_queues": ["app"]}, {"on_complete_queue": "app"}, OUT, []),
        # What the settings name themselves is allowed.
        ({"on_complete": "app.tasks.done"}, {"on_complete": "app.tasks.done"}, OUT, []),
        ({"staging_uri": "s3://stage/x/"}, {"images": ["s3://stage/x/a.png"]}, OUT, []),
        (
            {"listen_rules": [{"bucket": "photos", "prompt": "p", "output": "s3://edited/x/"}]},
            {"images": ["s3://photos/a.png"]},
            S3Location.parse_prefix("s3://edited/x/"),
            [],
        ),
    ],
)
def test_a_request_names_only_what_the_settings_allow(values, fields, output, problems):
    assert request_problems(settings(**values), request(**fields), output) == problems


def test_intake_refuses_with_every_field_named_at_once():
    with pytest.raises(InvalidRequest) as refused:
        check_request(
            settings(),
            request(images=["s3://aaa/x.png", "s3://bbb/y.png"], on_complete="x.y"),
            S3Location.parse_prefix("s3://ccc/"),
        )
    fields = [problem.split(":")[0] for problem in refused.value.problems]
    assert fields == ["images[0]", "images[1]", "output", "on_complete"]


def test_the_worker_refuses_a_stored_job_past_intake():
    with pytest.raises(NotAllowed, match="images\\[0\\]: input bucket 'theirs' is not allowed"):
        check_job(settings(), request(images=["s3://theirs/a.png"]), "s3://out/edits/")
    with pytest.raises(NotAllowed, match="output: output bucket 'theirs' is not allowed"):
        check_output(settings(), S3Location.parse_prefix("s3://theirs/"))
    check_output(settings(), OUT)


@pytest.mark.parametrize(
    ("values", "targets", "refused"),
    [
        ({}, Targets(), None),
        ({}, Targets(webhook_url="https://x/h"), None),
        ({}, Targets(on_complete="their.tasks.run"), "on_complete: task 'their.tasks.run'"),
        ({"on_complete": "app.done"}, Targets(on_complete="app.done"), None),
        (
            {"on_complete_tasks": ["app.done"]},
            Targets(on_complete="app.done", on_complete_queue="wanedit"),
            "on_complete_queue: queue 'wanedit'",
        ),
    ],
)
def test_the_worker_sends_only_an_allowed_task(values, targets, refused):
    answer = task_refusal(settings(**values), targets)
    assert (answer or "").startswith(refused or "") and (answer is None) == (refused is None)


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("a, b", ["a", "b"]),
        ('["a", "b"]', ["a", "b"]),
        ("*", ["*"]),
        ("", []),
    ],
)
def test_the_lists_are_read_from_the_environment(monkeypatch, env, value):
    monkeypatch.setenv("WANEDIT_INPUT_BUCKETS", env)
    monkeypatch.setenv("WANEDIT_ON_COMPLETE_TASKS", json.dumps(["app.done", *value[:0]]))
    loaded = load_settings()
    assert loaded.input_buckets == value
    assert loaded.on_complete_tasks == ["app.done"]


def test_a_bad_task_name_in_the_list_fails_at_start_up(monkeypatch):
    monkeypatch.setenv("WANEDIT_ON_COMPLETE_TASKS", "not a task")
    with pytest.raises(ConfigError, match="ON_COMPLETE_TASKS"):
        load_settings()
