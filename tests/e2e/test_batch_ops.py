"""`wanedit batch-retry`, `batch-cancel` and `batch-export` on the running stack: a real worker,
Redis, moto's S3 server and the sandbox over HTTP."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shlex
import subprocess
import sys
import time
import uuid

import pytest
import requests
from click.testing import CliRunner

from tests.conftest import make_image
from tests.e2e.conftest import BUCKET
from tests.e2e.test_batch import page_block
from wanedit.producers.cli import main

pytestmark = pytest.mark.integration


def sandbox_config(sandbox, **changes: float) -> None:
    url = sandbox.base_url.removesuffix("/api/v1") + "/sandbox/config"
    requests.post(url, json=changes, timeout=5).raise_for_status()


@pytest.fixture
def quick_sandbox(sandbox):
    """Tasks that take a tenth of a second: 200 lines end in well under a minute."""
    sandbox_config(sandbox, duration_min=0.05, duration_max=0.1)
    yield sandbox
    sandbox_config(sandbox, duration_min=0.5, duration_max=1.5)


@pytest.fixture
def slow_sandbox(sandbox):
    sandbox_config(sandbox, duration_min=4.0, duration_max=4.0)
    yield sandbox
    sandbox_config(sandbox, duration_min=0.5, duration_max=1.5)


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def s3_http_url(stack_env: dict[str, str], key: str) -> str:
    """The plain HTTP address of an object on the S3 server (the provider downloads it)."""
    return f"{stack_env['AWS_ENDPOINT_URL_S3'].rstrip('/')}/{BUCKET}/{key}"


def write_manifest(tmp_path, lines: list[dict]) -> str:
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def job_count(producer) -> int:
    return sum(1 for _ in producer.redis.scan_iter(f"{producer.settings.key_prefix}:job:*"))


def late_batch(stack_env, s3, tmp_path, total: int, late: set[int]) -> tuple[str, list[dict]]:
    """A manifest of `total` lines; the lines in `late` name an input that is not uploaded yet
    (the provider cannot download it: InvalidParameter, download timed out)."""
    tag = uuid.uuid4().hex[:8]
    s3.put_object(Bucket=BUCKET, Key=f"{tag}/in/ok.png", Body=make_image(512, 512, (30, 90, 160)))
    lines = [
        {
            "prompt": f"Add a lantern, number {number}",
            "images": [
                s3_http_url(stack_env, f"{tag}/late/{number}.png")
                if number in late
                else f"s3://{BUCKET}/{tag}/in/ok.png"
            ],
        }
        for number in range(1, total + 1)
    ]
    return write_manifest(tmp_path, lines), lines


def upload_late(s3, lines: list[dict], late: set[int]) -> None:
    for number in late:
        key = lines[number - 1]["images"][0].split(f"/{BUCKET}/", 1)[1]
        # Public: the provider downloads it by its plain URL.
        s3.put_object(
            Bucket=BUCKET, Key=key, Body=make_image(512, 512, (200, 40, 40)), ACL="public-read"
        )


def run_and_wait(manifest: str, batch_id: str, timeout: float = 240) -> dict:
    from wanedit.intake.batch import wait_for_batch

    code, output = cli("batch", manifest, "--batch-id", batch_id, "--output", f"s3://{BUCKET}/ops/")
    assert code == 0, output
    return wait_for_batch(batch_id, timeout)


def test_failed_lines_are_retried_to_success_and_exported(
    stack_env, worker, producer, s3, quick_sandbox, tmp_path
):
    late = set(range(7, 201, 10))  # lines 7, 17, ..., 197: 20 lines
    assert len(late) == 20
    manifest, lines = late_batch(stack_env, s3, tmp_path, 200, late)
    batch_id = f"ops-{uuid.uuid4().hex[:8]}"

    status = run_and_wait(manifest, batch_id)
    assert (status["enqueued"], status["done"], status["failed"], status["running"]) == (
        200, 180, 20, 0,
    )  # fmt: skip
    assert status["failures_by_code"] == {"InvalidParameter": 20}

    # The inputs are there now: the failed lines are sent again, the rest are left.
    upload_late(s3, lines, late)
    jobs_before = job_count(producer)
    commands = [shlex.split(line) for line in page_block("batch-ops-commands").splitlines()]
    retry, retry_all, cancel, export = [
        [batch_id if arg == "BATCH_ID" else arg for arg in command[1:]] for command in commands
    ]
    assert (retry[0], retry_all[-1], cancel[0], export[0]) == (
        "batch-retry", "--all", "batch-cancel", "batch-export",
    )  # fmt: skip
    code, output = cli(*retry)
    assert code == 0, output
    assert f"batch {batch_id}: 20 lines sent again, 180 skipped" in output
    assert "skipped: 180 x succeeded" in output
    assert job_count(producer) == jobs_before + 20

    from wanedit.intake.batch import wait_for_batch

    status = wait_for_batch(batch_id, 240)
    assert (status["enqueued"], status["done"], status["failed"], status["running"]) == (
        200, 200, 0, 0,
    )  # fmt: skip
    code, output = cli("batch-status", batch_id, "--json")
    assert code == 0, output
    shown = json.loads(output)
    assert (shown["done"], shown["failed"], shown["by_status"]) == (200, 0, {"succeeded": 200})
    assert (shown["retried_attempts"], shown["images_billed"]) == (20, 200)

    # A second retry finds nothing to send.
    code, output = cli("batch-retry", batch_id, "--json")
    assert code == 0, output
    again = json.loads(output)
    assert (again["resent"], again["skipped_by_reason"]) == (0, {"succeeded": 200})

    out = tmp_path / "rows.csv"
    with contextlib.chdir(tmp_path):
        code, output = cli(*export)  # --format csv --out rows.csv
    assert code == 0, output
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == [
            "line", "inputs", "prompt", "status", "outputs", "error_code", "error_message",
            "cost", "currency", "job_id", "attempts",
        ]  # fmt: skip
        csv_rows = list(reader)
    code, output = cli("batch-export", batch_id, "--format", "jsonl")
    assert code == 0, output
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]

    assert [row["line"] for row in rows] == list(range(1, 201))
    assert [int(row["line"]) for row in csv_rows] == list(range(1, 201))
    for row, csv_row, line in zip(rows, csv_rows, lines, strict=True):
        number = row["line"]
        assert row["inputs"] == line["images"]  # as the manifest named them
        assert csv_row["inputs"] == "|".join(line["images"])
        assert row["prompt"] == csv_row["prompt"] == line["prompt"]
        assert row["status"] == csv_row["status"] == "succeeded"
        assert row["attempts"] == int(csv_row["attempts"]) == (2 if number in late else 1)
        assert row["error_code"] is None and csv_row["error_code"] == ""
        assert row["cost"] == pytest.approx(0.220177) and row["currency"] == "CNY"
        assert row["job_id"] == csv_row["job_id"]
        assert len(row["outputs"]) == 1 and csv_row["outputs"] == row["outputs"][0]
        for uri in row["outputs"]:
            assert uri.startswith(f"s3://{BUCKET}/ops/{batch_id}/")
            s3.head_object(Bucket=BUCKET, Key=uri.removeprefix(f"s3://{BUCKET}/"))
    assert len({row["job_id"] for row in rows}) == 200


def test_two_retries_at_once_make_one_new_attempt_per_line(
    stack_env, worker, producer, s3, quick_sandbox, tmp_path
):
    late = {2, 3, 5, 8, 13, 21}
    manifest, lines = late_batch(stack_env, s3, tmp_path, 24, late)
    batch_id = f"ops-{uuid.uuid4().hex[:8]}"
    status = run_and_wait(manifest, batch_id)
    assert (status["done"], status["failed"]) == (18, 6)
    upload_late(s3, lines, late)

    jobs_before = job_count(producer)
    command = [sys.executable, "-m", "wanedit.producers.cli", "batch-retry", batch_id, "--json"]
    env = {**os.environ, **stack_env}
    runs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outcomes = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr
        outcomes.append(json.loads(stdout))

    assert job_count(producer) == jobs_before + 6
    # Each line was sent again once, by one run or the other; the other found it done.
    resent = [int(line) for outcome in outcomes for line in outcome["jobs"]]
    assert sorted(resent) == sorted(late)
    assert sum(outcome["resent"] for outcome in outcomes) == 6
    assert not set(outcomes[0]["jobs"]) & set(outcomes[1]["jobs"])

    from wanedit.intake.batch import wait_for_batch
    from wanedit.producers import batch_rows

    status = wait_for_batch(batch_id, 120)
    assert (status["enqueued"], status["done"], status["failed"]) == (24, 24, 0)
    rows = list(batch_rows(batch_id))
    assert [row["attempts"] for row in rows] == [2 if n in late else 1 for n in range(1, 25)]


def test_batch_cancel_cancels_queued_lines_and_lets_in_flight_ones_finish(
    stack_env, worker, producer, s3, slow_sandbox, tmp_path
):
    manifest, _ = late_batch(stack_env, s3, tmp_path, 12, set())
    batch_id = f"ops-{uuid.uuid4().hex[:8]}"
    code, output = cli("batch", manifest, "--batch-id", batch_id, "--output", f"s3://{BUCKET}/ops/")
    assert code == 0, output

    from wanedit.intake.batch import batch_jobs, wait_for_batch

    # Five slots per account: five lines are at the provider, seven wait with us.
    deadline = time.monotonic() + 30
    while sum(job["provider_task_id"] is not None for job in batch_jobs(batch_id)) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    creates = slow_sandbox.stats()["create_requests"]

    code, output = cli("batch-cancel", batch_id)
    assert code == 0, output
    assert f"batch {batch_id}: 7 canceled, 5 already in flight, 0 already ended" in output

    status = wait_for_batch(batch_id, 60)
    assert status["by_status"] == {"succeeded": 5, "canceled": 7}
    assert status["canceled"] is True
    assert slow_sandbox.stats()["create_requests"] == creates

    code, output = cli("batch-cancel", batch_id, "--json")
    assert json.loads(output) == {"canceled": 0, "in_flight": 0, "ended": 12}

    # Canceled lines are left by a plain retry, and sent again with --all.
    code, output = cli("batch-retry", batch_id)
    assert "0 lines sent again, 12 skipped" in output
    assert "skipped: 7 x canceled (use --all)" in output


def test_batch_cancel_stops_a_batch_enqueued_in_chunks(stack_env, worker, producer, s3, tmp_path):
    from wanedit.intake.batch import (
        Chunk,
        batch_status,
        begin_scheduled,
        run_chunk,
        wait_for_batch,
    )
    from wanedit.producers import cancel_batch

    manifest, _ = late_batch(stack_env, s3, tmp_path, 9, set())
    batch_id = f"ops-chunked-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex
    assert begin_scheduled(batch_id, manifest, f"s3://{BUCKET}/ops/", token, lease=60)
    chunk = {"lines": 3, "lease": 60, "budget": 60.0}
    assert run_chunk(batch_id, token, **chunk) is Chunk.MORE
    assert batch_status(batch_id)["enqueued"] == 3

    counts = cancel_batch(batch_id)
    assert sum(counts.values()) == 3
    # Lines already at the provider finish (and leave nothing running for the next test).
    status = wait_for_batch(batch_id, 60)
    assert status["running"] == 0
    assert status["by_status"].get("succeeded", 0) == counts["in_flight"] + counts["ended"]

    assert run_chunk(batch_id, token, **chunk) is Chunk.DONE
    assert batch_status(batch_id)["enqueued"] == 3
    # Its slot sent again does not start it either.
    assert not begin_scheduled(batch_id, manifest, None, uuid.uuid4().hex, lease=60)
    # Nor does running its manifest again.
    code, output = cli("batch", manifest, "--batch-id", batch_id)
    assert code == 0, output
    assert batch_status(batch_id)["enqueued"] == 3


def test_the_documented_python_calls_retry_export_and_cancel(
    stack_env, worker, producer, s3, quick_sandbox, tmp_path
):
    manifest, lines = late_batch(stack_env, s3, tmp_path, 4, {3})
    invalid = {"prompt": "Too many", "images": lines[0]["images"], "n": 9}
    with open(manifest, "a") as handle:
        handle.write(json.dumps(invalid) + "\n")
    batch_id = f"ops-{uuid.uuid4().hex[:8]}"
    from wanedit.intake.batch import wait_for_batch

    code, output = cli("batch", manifest, "--batch-id", batch_id, "--output", f"s3://{BUCKET}/ops/")
    assert code == 1, output  # line 5 is invalid
    status = wait_for_batch(batch_id, 120)
    assert (status["done"], status["failed"], status["invalid"]) == (3, 1, 1)
    upload_late(s3, lines, {3})

    namespace = {"batch_id": batch_id}
    with contextlib.chdir(tmp_path):
        exec(page_block("batch-ops-python"), namespace)
    assert namespace["outcome"]["resent"] == 1
    assert namespace["outcome"]["jobs"].keys() == {"3"}
    with (tmp_path / "rows.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["line"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert (rows[4]["status"], rows[4]["error_code"], rows[4]["attempts"]) == (
        "invalid", "InvalidLine", "0",
    )  # fmt: skip
    assert rows[4]["error_message"] == "n: 9 is outside 1 to 4 images"
    assert (rows[4]["inputs"], rows[4]["prompt"]) == (lines[0]["images"][0], "Too many")
    assert rows[2]["inputs"] == lines[2]["images"][0]
    assert rows[2]["attempts"] == "2"
    # The retried line was queued or in flight when the batch was canceled; the rest had ended.
    counts = namespace["counts"]
    assert counts["ended"] == 3 and counts["canceled"] + counts["in_flight"] == 1
    assert wait_for_batch(batch_id, 60)["running"] == 0
    assert namespace["outcome"]["skipped_by_reason"] == {
        "invalid line (fix the manifest and run it again)": 1,
        "succeeded": 3,
    }


@pytest.mark.parametrize(
    "command",
    [
        ["batch-retry", "no-such-batch"],
        ["batch-cancel", "no-such-batch"],
        ["batch-export", "no-such-batch", "--out", "rows.csv"],
    ],
)
def test_an_unknown_batch_is_named_and_nothing_is_written(stack_env, command, tmp_path):
    with contextlib.chdir(tmp_path):
        code, output = cli(*command)
    assert code == 4  # no such job or batch
    assert "batch no-such-batch does not exist" in output
    assert not (tmp_path / "rows.csv").exists()


def test_an_export_format_other_than_jsonl_or_csv_is_refused(stack_env):
    from wanedit.errors import InvalidRequest
    from wanedit.producers import export_batch

    with pytest.raises(InvalidRequest, match=r"format: 'xml' is not one of jsonl, csv"):
        export_batch("any", "xml")
    code, output = cli("batch-export", "any", "--format", "xml")
    assert code == 2 and "'xml' is not one of 'jsonl', 'csv'" in output


def test_a_retry_that_cannot_send_a_line_names_it_and_exits_2(
    stack_env, worker, producer, quick_sandbox, tmp_path
):
    # Two lines from local files that fail at the provider; before the retry, line 2's file is
    # gone, so its request can no longer be sent.
    images = tmp_path / "images"
    images.mkdir()
    for number in (1, 2):
        (images / f"{number}.png").write_bytes(make_image(512, 512, (20 * number, 90, 160)))
    manifest = write_manifest(
        tmp_path,
        [
            {
                "prompt": f"Add a lantern {number} [sandbox:fail]",
                "images": [str(images / f"{number}.png")],
            }
            for number in (1, 2)
        ],
    )
    batch_id = f"ops-{uuid.uuid4().hex[:8]}"
    status = run_and_wait(manifest, batch_id)
    assert (status["enqueued"], status["failed"]) == (2, 2), status
    (images / "2.png").unlink()
    jobs_before = job_count(producer)

    code, output = cli("batch-retry", batch_id, "--all")

    assert code == 2, output
    assert f"batch {batch_id}: 1 lines sent again, 1 skipped" in output
    assert "line 2: images[0]" in output, output
    assert job_count(producer) == jobs_before + 1  # line 1 was sent; nothing half-written
    code, output = cli("batch-retry", batch_id, "--all", "--json")
    assert code == 2, output
    assert [problem["line"] for problem in json.loads(output)["problems"]] == [2]
