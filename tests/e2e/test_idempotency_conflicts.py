"""An idempotency key names one edit: the same request returns its job, a different one is
refused with IdempotencyConflict (exit 2 in the CLI, 422 from the documented view), even when
the two race; a key recorded before requests had fingerprints is accepted as before."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.test_cli import wanedit
from tests.e2e.test_web_backends import documented_view
from wanedit.errors import InvalidRequest
from wanedit.intake import enqueue_message
from wanedit.intake.context import get_context
from wanedit.producers import IdempotencyConflict, get_job, submit_edit

pytestmark = pytest.mark.integration

IMAGE = "https://example.com/in.png"


def request(key: str, **changes: Any) -> dict[str, Any]:
    return {"prompt": "idempotent edit", "images": [IMAGE], "idempotency_key": key, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"prompt": "another edit"},
        {"images": ["https://example.com/other.png"]},
        {"n": 2},
        {"size": "1024*1024"},
        {"seed": 7},
        {"watermark": True},
        {"prompt_extend": False},
        {"negative_prompt": "blur"},
        {"output": "s3://wanedit-test/elsewhere/"},
    ],
)
def test_a_key_reused_for_another_edit_is_refused(stack_env, run_id, changes) -> None:
    key = f"conflict-{run_id}-{uuid.uuid4().hex[:8]}"
    first = submit_edit(request(key))
    with pytest.raises(IdempotencyConflict) as caught:
        submit_edit(request(key, **changes))
    assert isinstance(caught.value, InvalidRequest)
    assert (caught.value.key, caught.value.job_id) == (key, first)
    assert caught.value.problems[0].startswith(
        f"idempotency_key {key!r}: already used for job {first} with a different request"
    )
    assert submit_edit(request(key)) == first


@pytest.mark.parametrize(
    "changes",
    [{"priority": "batch"}, {"metadata": {"order": 2}}, {"on_complete": "myapp.tasks.on_edit"}],
)
def test_fields_that_do_not_change_the_edit_return_the_same_job(stack_env, run_id, changes):
    key = f"same-{run_id}-{uuid.uuid4().hex[:8]}"
    first = submit_edit(request(key))
    assert submit_edit(request(key, **changes)) == first
    assert get_job(first)["request"].get("priority") == "interactive"


def test_a_key_recorded_without_a_fingerprint_is_accepted_as_before(stack_env, run_id) -> None:
    ctx = get_context()
    key = f"old-{run_id}"
    old = uuid.uuid4().hex
    # A record as written before fingerprints existed: the key and the job, no fingerprint.
    created, _ = ctx.store.create(old, request(key), "s3://wanedit-test/out/", idempotency_key=key)
    assert created
    assert submit_edit(request(key, prompt="anything at all")) == old


def test_the_create_script_compares_the_fingerprint_atomically(stack_env, run_id) -> None:
    ctx = get_context()
    key = f"script-{run_id}"
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    args = ({}, "s3://wanedit-test/out/")
    assert ctx.store.create(first, *args, idempotency_key=key, fingerprint="a" * 64) == (
        True,
        first,
    )
    assert ctx.store.create(second, *args, idempotency_key=key, fingerprint="a" * 64) == (
        False,
        first,
    )
    with pytest.raises(IdempotencyConflict):
        ctx.store.create(second, *args, idempotency_key=key, fingerprint="b" * 64)
    assert not ctx.store.exists(second)


def test_two_different_requests_racing_for_one_key(stack_env, run_id) -> None:
    key = f"race-{run_id}"
    ids: dict[str, list[str]] = {"a": [], "b": []}
    conflicts: dict[str, list[IdempotencyConflict]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def send(which: str) -> None:
        start.wait()
        try:
            ids[which].append(submit_edit(request(key, prompt=f"racing edit {which}")))
        except IdempotencyConflict as exc:
            conflicts[which].append(exc)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=("ab"[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    [winner] = [which for which in "ab" if ids[which]]
    loser = "b" if winner == "a" else "a"
    job_id = ids[winner][0]
    assert ids[winner] == [job_id] * 4 and conflicts[winner] == []
    assert ids[loser] == [] and len(conflicts[loser]) == 4
    assert {exc.job_id for exc in conflicts[loser]} == {job_id}
    assert get_job(job_id)["request"]["prompt"] == f"racing edit {winner}"


def test_the_cli_exits_2_naming_the_key(stack_env, run_id) -> None:
    key = f"cli-{run_id}"
    first = wanedit(
        stack_env, "submit", "--prompt", "p", "--image", IMAGE, "--idempotency-key", key
    )
    assert first.returncode == 0, first.stderr
    again = wanedit(
        stack_env, "submit", "--prompt", "p", "--image", IMAGE, "--idempotency-key", key
    )
    assert (again.returncode, again.stdout) == (0, first.stdout)
    other = wanedit(
        stack_env, "submit", "--prompt", "p", "--image", IMAGE, "--idempotency-key", key, "-n", "3"
    )
    assert other.returncode == 2
    assert other.stderr.startswith(
        f"wanedit: invalid request: idempotency_key {key!r}: already used for job "
        f"{first.stdout.strip()} with a different request"
    )


def test_the_documented_view_answers_422(stack_env, run_id) -> None:
    client = TestClient(documented_view())
    key = f"web-{run_id}"
    first = client.post("/edits", json=request(key))
    assert first.status_code == 202, first.text
    refused = client.post("/edits", json=request(key, n=2))
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]
    assert problem.startswith(f"idempotency_key {key!r}: already used for job")


def test_the_enqueue_task_records_the_conflict_under_its_own_code(stack_env, run_id) -> None:
    key = f"task-{run_id}"
    first = submit_edit(request(key))
    mine = uuid.uuid4().hex
    with pytest.raises(IdempotencyConflict):
        enqueue_message(request(key, n=4), mine)
    job = get_job(mine)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "IdempotencyConflict"
    assert first in job["error"]["message"]
