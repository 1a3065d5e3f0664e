"""The webhook receiver's answers that need no Redis or S3: method, token, unreadable body."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from wanedit.config.settings import load_settings
from wanedit.intake.context import build_context
from wanedit.producers.listen import Outcome, receiver

RULES = '[{"bucket": "photos", "prompt": "Add a hat", "output": "s3://photos/edited/"}]'


@pytest.fixture
def client(monkeypatch) -> tuple[Client, list[Outcome]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Nothing here is ever reached: each answer comes before the first Redis or S3 call.
    monkeypatch.setenv("WANEDIT_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("WANEDIT_LISTEN_RULES", RULES)
    monkeypatch.setenv("WANEDIT_LISTEN_TOKEN", "hook-token")
    settings = load_settings()
    outcomes: list[Outcome] = []
    return Client(receiver(build_context(settings), outcomes.append)), outcomes


def test_only_post_is_answered(client):
    app, outcomes = client
    answer = app.get("/")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert outcomes == []


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic aG9vay10b2tlbg=="])
def test_a_caller_without_the_token_is_refused(client, authorization):
    app, outcomes = client
    headers = {"Authorization": authorization} if authorization else {}
    answer = app.post("/", data="{}", headers=headers)
    assert answer.status_code == 401
    assert answer.json == {"error": "a valid bearer token is required"}
    assert outcomes == []


def test_a_body_that_can_never_work_is_400_and_counts_as_handled(client):
    app, outcomes = client
    answer = app.post("/", data="not json", headers={"Authorization": "Bearer hook-token"})
    assert answer.status_code == 400
    assert answer.mimetype == "application/json"
    assert answer.json["jobs"] == []
    assert answer.json["dropped"].startswith("invalid notification: body: not JSON")
    assert [outcome.jobs for outcome in outcomes] == [[]]


def test_a_body_over_the_limit_is_413_and_never_read(client):
    from wanedit.producers.listen import HTTP_BODY_MAX

    app, outcomes = client
    body = b"[" * (HTTP_BODY_MAX + 1)
    answer = app.post("/", data=body, headers={"Authorization": "Bearer hook-token"})
    assert answer.status_code == 413
    assert answer.json == {"error": f"body: over the limit of {HTTP_BODY_MAX} bytes"}
    assert outcomes == []
