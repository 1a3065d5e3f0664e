"""A batch's lines enqueued a chunk at a time, on a real Redis and moto's S3: the same guarantees as
one line at a time (every per-line check, a bad line reported and the rest enqueued, idempotency
keys, nothing half-written when Redis goes away mid-chunk)."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis

from tests.conftest import make_image
from wanedit.config.settings import load_settings
from wanedit.errors import BackendUnavailable, IdempotencyConflict, InvalidRequest
from wanedit.intake import submit_edit, submit_many
from wanedit.intake.batch import Source, enqueue_line, enqueue_lines, run_batch
from wanedit.intake.context import ProducerContext, build_context
from wanedit.intake.manifest import parse_jsonl
from wanedit.sandbox.stack import patched_env
from wanedit.store.jobs import JobStore

pytestmark = pytest.mark.integration
BUCKET = "batched-enqueue"


@pytest.fixture(scope="module")
def s3(s3_server: dict[str, str]) -> Iterator[Any]:
    with patched_env(s3_server):
        client = boto3.client("s3", endpoint_url=s3_server["AWS_ENDPOINT_URL_S3"])
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def producer(redis_url: str, s3_server: dict[str, str], s3: Any) -> Iterator[ProducerContext]:
    tag = f"batched-{uuid.uuid4().hex[:8]}"
    with patched_env(s3_server):
        settings = load_settings(
            redis_url=redis_url,
            key_prefix=tag,
            queue=tag,
            events_stream=f"{tag}:events",
            output_uri=f"s3://{BUCKET}/{tag}/",
        )
        context = build_context(settings)
        yield context
    for key in context.redis.scan_iter(f"{tag}*"):
        context.redis.delete(key)


def line(number: int, **fields: Any) -> str:
    row = {"prompt": f"edit {number}", "images": [f"https://img.example.com/{number}.png"]}
    row.update(fields)
    return json.dumps({k: v for k, v in row.items() if v is not None})


def manifest(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / f"m-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_text("".join(f"{row}\n" for row in rows))
    return path


def backlog(ctx: ProducerContext) -> list[str]:
    return [str(j) for j in ctx.redis.zrange(ctx.store.keys.backlog("batch"), 0, -1)]


def data_uri() -> str:
    return "data:image/png;base64," + base64.b64encode(make_image(400, 400, (9, 99, 199))).decode()


def test_bad_lines_are_reported_by_field_and_the_others_enqueued_in_line_order(
    producer, tmp_path
) -> None:
    rows = [line(n) for n in range(1, 451)]  # more than two chunks
    rows[9] = line(10, n=9)  # out of range
    rows[209] = "{not json"
    rows[300] = line(301, prompt=None)
    status = run_batch(Source(str(manifest(tmp_path, rows))), context=producer)

    assert (status["enqueued"], status["invalid"]) == (447, 3)
    keys = producer.store.keys.batch(status["id"])
    invalid = producer.redis.hgetall(keys.invalid)
    assert set(invalid) == {"10", "210", "301"}
    assert "n: 9 is outside 1 to 4" in invalid["10"]
    assert invalid["301"].startswith("prompt")
    jobs = [str(j) for j in producer.redis.lrange(keys.jobs, 0, -1)]
    by_line = producer.redis.hgetall(keys.lines)
    in_order = [by_line[str(n)] for n in range(1, 451) if str(n) in by_line]
    # The backlog and the batch's job list both keep the manifest's order.
    assert jobs == in_order == backlog(producer)
    record = producer.store.get(by_line["451"] if "451" in by_line else by_line["450"])
    assert record.request["prompt"] == "edit 450"
    assert record.output_uri == f"{producer.settings.output_uri}{status['id']}/"


def test_running_the_same_manifest_again_adds_nothing(producer, tmp_path) -> None:
    path = manifest(tmp_path, [line(n) for n in range(1, 301)])
    first = run_batch(Source(str(path)), context=producer)
    keys = producer.store.keys.batch(first["id"])
    jobs = producer.redis.lrange(keys.jobs, 0, -1)
    # A run cut off after its lines' jobs were made but before they were recorded as the batch's:
    producer.redis.delete(keys.lines, keys.jobs)
    again = run_batch(Source(str(path)), context=producer)

    assert again["id"] == first["id"]
    assert producer.redis.lrange(keys.jobs, 0, -1) == jobs  # found by their idempotency keys
    assert len(backlog(producer)) == 300


def test_a_chunk_records_what_lines_one_at_a_time_record(producer, tmp_path) -> None:
    rows = [line(1, metadata={"sku": "A-1"}), line(2, n=2, seed=5), line(3, size="1024*1024")]
    lines = list(parse_jsonl(rows))
    output = f"s3://{BUCKET}/compare/"
    single, batched = producer.store.keys.batch("one"), producer.store.keys.batch("many")
    for item in lines:
        enqueue_line(producer, single, "one", item, output)
    enqueue_lines(producer, batched, "many", lines, output)

    def records(keys: Any) -> list[dict[str, Any]]:
        ids = producer.redis.lrange(keys.jobs, 0, -1)
        ignored = {"id", "timestamps", "backlog_score", "idempotency_key", "request_fingerprint"}
        out = []
        for job in producer.store.get_many(ids):
            view = {k: v for k, v in dataclasses.asdict(job).items() if k not in ignored}
            view["request"] = {k: v for k, v in job.request.items() if k != "idempotency_key"}
            out.append(view)
        return out

    assert records(batched) == records(single)
    assert producer.redis.hgetall(batched.requests) == producer.redis.hgetall(single.requests)


class _RedisGoesAway(JobStore):
    def create_many(self, jobs):  # type: ignore[no-untyped-def]
        raise redis.ConnectionError("Connection refused")


def test_redis_away_mid_chunk_leaves_nothing_half_written(producer, s3) -> None:
    store = _RedisGoesAway(
        producer.redis,
        key_prefix=producer.settings.key_prefix,
        events_stream=producer.settings.events_stream,
        events_maxlen=100,
        ttl_seconds=3600,
    )
    ctx = dataclasses.replace(producer, store=store)
    staging = "wanedit-staging/"  # beside the output: the bucket's own staging prefix
    requests = [
        {"prompt": "staged", "images": [data_uri()], "idempotency_key": f"k-{n}"} for n in range(3)
    ]
    with pytest.raises(BackendUnavailable):
        submit_many(requests, context=ctx)

    assert not list(producer.redis.scan_iter(f"{producer.settings.key_prefix}:*"))
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix=staging).get("KeyCount", 0)
    assert left == 0  # the chunk's staged inputs were undone

    # With Redis there, the same chunk stages its inputs there and records every job.
    assert all(isinstance(job_id, str) for job_id in submit_many(requests, context=producer))
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=staging)["KeyCount"] == 3


def test_one_conflicting_key_is_refused_alone(producer) -> None:
    taken = submit_edit({"prompt": "first", "images": ["https://a.example/1.png"],
                         "idempotency_key": "same"}, context=producer)  # fmt: skip
    outcomes = submit_many(
        [
            {"prompt": "other", "images": ["https://a.example/1.png"], "idempotency_key": "same"},
            {"prompt": "first", "images": ["https://a.example/1.png"], "idempotency_key": "same"},
            {"prompt": "new", "images": ["https://a.example/2.png"], "idempotency_key": "new"},
            {"prompt": "", "images": []},
        ],
        context=producer,
    )

    conflict, repeated, new, invalid = outcomes
    assert isinstance(conflict, IdempotencyConflict) and conflict.job_id == taken
    assert repeated == taken
    assert isinstance(new, str) and new != taken
    assert producer.store.get(new).status.value == "queued"
    assert isinstance(invalid, InvalidRequest)
    assert any(problem.startswith("images") for problem in invalid.problems)
    assert backlog(producer) == []  # submit_edit's default priority is interactive
    waiting = producer.redis.zrange(producer.store.keys.backlog("interactive"), 0, -1)
    assert sorted(map(str, waiting)) == sorted([taken, new])


def test_text_outside_ascii_is_stored_as_given(producer) -> None:
    prompt = "把背景换成日落 🌅, café"
    [job_id] = submit_many([{"prompt": prompt, "images": ["https://a.example/x.png"]}],
                           context=producer)  # fmt: skip
    assert isinstance(job_id, str)
    assert producer.store.get(job_id).request["prompt"] == prompt
