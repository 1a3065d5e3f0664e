"""Completion callbacks, the pure part: signing, secrets, targets, retry policy, validation."""

from __future__ import annotations

import base64
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from wanedit.config.settings import load_settings
from wanedit.errors import ConfigError, InvalidRequest
from wanedit.request import parse_request
from wanedit.webhooks import (
    Targets,
    decode_secret,
    headers,
    sign,
    targets_for,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
BASE = {"prompt": "p", "images": ["https://example.com/a.png"]}


def test_signature_verifies_with_the_standardwebhooks_package():
    body = json.dumps({"event_id": "j1:job.succeeded", "type": "job.succeeded"}).encode()
    now = int(time.time())
    sent = headers(decode_secret(SECRET), "j1:job.succeeded", now, body)

    assert Webhook(SECRET).verify(body, sent)["event_id"] == "j1:job.succeeded"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b" ", sent)


def test_signature_is_hmac_of_id_timestamp_body():
    # The spec's own example (standard-webhooks/spec, "Verifying webhooks").
    key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with 'whsec_'"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "5 bytes"),
    ],
)
def test_bad_secrets_are_refused_without_quoting_them(secret, problem):
    with pytest.raises(ValueError, match=problem) as info:
        decode_secret(secret)
    assert secret not in str(info.value)


def test_request_callbacks_win_over_the_defaults():
    defaults = {
        "webhook_url": "https://d.example/h",
        "on_complete": "a.b",
        "on_complete_queue": "q",
    }
    assert targets_for({}, **defaults) == Targets("https://d.example/h", "a.b", "q")
    own = {"callback_url": "https://own.example/h", "on_complete": "x.y", "on_complete_queue": "z"}
    assert targets_for(own, **defaults) == Targets("https://own.example/h", "x.y", "z")
    none = targets_for({}, webhook_url=None, on_complete=None, on_complete_queue="celery")
    assert not none.any


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"callback_url": "ftp://example.com/h"},
            "callback_url: scheme 'ftp' is not http or https",
        ),
        ({"callback_url": "https:///path"}, "callback_url: the URL has no host"),
        ({"callback_url": "http://h:99999/"}, "callback_url: the URL cannot be parsed"),
        # Spelled so that parsers disagree on the host: refused before anything is enqueued.
        (
            {"callback_url": "http://127.0.0.1:6379\\@hooks.example/"},
            "callback_url: the URL holds a backslash",
        ),
        ({"callback_url": "http://2130706433/h"}, "callback_url: the host is an IPv4 address"),
        ({"on_complete": "not a task"}, "on_complete: 'not a task' is not a dotted task name"),
        ({"on_complete": "tasks"}, "on_complete: 'tasks' is not a dotted task name"),
        ({"on_complete_queue": "a queue"}, "on_complete_queue: 'a queue' must be 1 to 200"),
    ],
)
def test_request_callback_fields_are_checked(fields, problem):
    with pytest.raises(InvalidRequest) as info:
        parse_request({**BASE, **fields})
    assert info.value.problems[0].startswith(problem), info.value.problems


def test_request_callback_fields_are_kept():
    request = parse_request(
        {
            **BASE,
            "callback_url": "https://hooks.example.com/wanedit",
            "on_complete": "myapp.tasks.on_edit",
            "on_complete_queue": "myapp",
        }
    )
    stored = request.model_dump(mode="json")
    assert stored["callback_url"] == "https://hooks.example.com/wanedit"
    assert (stored["on_complete"], stored["on_complete_queue"]) == ("myapp.tasks.on_edit", "myapp")


def test_settings_for_callbacks(monkeypatch):
    # The e2e session's environment may carry a secret; this test is about having none.
    monkeypatch.delenv("WANEDIT_WEBHOOK_SECRET", raising=False)
    settings = load_settings(
        webhook_url="https://hooks.example.com/w",
        webhook_secret=SECRET,
        on_complete="myapp.tasks.on_edit",
    )
    assert settings.webhook_key() == bytes(range(32))
    assert settings.on_complete_queue == "celery"
    assert settings.webhook_deadline == 86400
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET: must start with"):
        load_settings(webhook_secret="nope")
    with pytest.raises(ConfigError, match="WANEDIT_WEBHOOK_SECRET is not set"):
        load_settings().webhook_key()
    with pytest.raises(ConfigError, match="WEBHOOK_URL: scheme 'file'"):
        load_settings(webhook_url="file:///etc/passwd")
