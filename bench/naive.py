"""The naive design users write first, for comparison: one Celery task per edit that blocks on the
official SDK's ``ImageSynthesis.call`` (create, then poll until done), then copies each result
into S3 and appends a completion event. A plain FIFO queue, no priorities, one API key.

Run it as ``celery -A bench.naive worker -c 2``. Settings come from the environment:
``NAIVE_REDIS_URL``, ``NAIVE_BUCKET``, ``NAIVE_QUEUE`` (default ``naive``), ``DASHSCOPE_API_KEY``,
``DASHSCOPE_HTTP_BASE_URL`` and boto3's ``AWS_*``.

For measurement only, the task keeps a small job record (hash ``naive:job:{id}``), decrements the
``naive:waiting`` counter when it starts, and writes events shaped like wanedit's on the stream
``naive:events``.
"""

from __future__ import annotations

import json
import os
import time
from http import HTTPStatus
from typing import Any

import dashscope
import redis
import requests
from celery import Celery
from dashscope import ImageSynthesis

MODEL = "wan2.5-i2i-preview"
EDIT_TASK = "naive.edit"
QUEUE = os.environ.get("NAIVE_QUEUE", "naive")
EVENTS = "naive:events"
WAITING = "naive:waiting"
PROVIDER_TIMES = ("submit_time", "scheduled_time", "end_time")


def job_key(job_id: str) -> str:
    return f"naive:job:{job_id}"


def make_app(redis_url: str) -> Celery:
    app = Celery("naive", broker=redis_url)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


app = make_app(os.environ.get("NAIVE_REDIS_URL", "redis://127.0.0.1:6379/0"))
if os.environ.get("DASHSCOPE_HTTP_BASE_URL"):
    # The SDK reads this at import time; set it again in case it was imported earlier.
    dashscope.base_http_api_url = os.environ["DASHSCOPE_HTTP_BASE_URL"]

_clients: dict[str, Any] = {}


def _redis() -> redis.Redis:
    if "redis" not in _clients:
        _clients["redis"] = redis.Redis.from_url(
            os.environ["NAIVE_REDIS_URL"], decode_responses=True
        )
    return _clients["redis"]


def _s3() -> Any:
    if "s3" not in _clients:
        import boto3
        from botocore.config import Config

        _clients["s3"] = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    return _clients["s3"]


def _end(job_id: str, status: str, fields: dict[str, Any], error: dict[str, str] | None) -> None:
    client = _redis()
    record = {**fields, "status": status, "t_done": time.time()}
    if error:
        record["error_code"] = error["code"]
    client.hset(job_key(job_id), mapping={k: str(v) for k, v in record.items()})
    event = {"type": f"job.{status}", "job_id": job_id, "status": status, "error": error}
    client.xadd(EVENTS, {"type": event["type"], "job_id": job_id, "data": json.dumps(event)})


@app.task(name=EDIT_TASK)
def edit(job_id: str, prompt: str, images: list[str]) -> None:
    """Create the task, block until it ends, copy its results, then emit one event."""
    client = _redis()
    client.hset(job_key(job_id), "t_started", str(time.time()))
    client.decr(WAITING)
    try:
        rsp = ImageSynthesis.call(
            api_key=os.environ["DASHSCOPE_API_KEY"],
            model=MODEL,
            prompt=prompt,
            images=images,
            n=1,
        )
        output = rsp.output or {}
        times = {name: output.get(name) or "" for name in PROVIDER_TIMES}
        if rsp.status_code != HTTPStatus.OK or output.get("task_status") != "SUCCEEDED":
            code = rsp.code or output.get("code") or output.get("task_status") or "Unknown"
            message = rsp.message or output.get("message") or ""
            _end(job_id, "failed", times, {"code": str(code), "message": str(message)})
            return
        bucket = os.environ["NAIVE_BUCKET"]
        stored = 0
        for index, result in enumerate(output.get("results") or []):
            url = result.get("url")
            if not url:
                continue
            image = requests.get(url, timeout=60)
            image.raise_for_status()
            _s3().put_object(
                Bucket=bucket,
                Key=f"naive-out/{job_id}/{index}.png",
                Body=image.content,
                ContentType="image/png",
            )
            stored += 1
    except Exception as exc:  # the SDK and requests raise on connection errors
        _end(job_id, "failed", {}, {"code": type(exc).__name__, "message": str(exc)[:300]})
        return
    if stored:
        _end(job_id, "succeeded", {**times, "stored": stored}, None)
    else:
        _end(job_id, "failed", times, {"code": "NoResult", "message": "no image stored"})
