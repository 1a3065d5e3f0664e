"""Redis memory per job: run N edits to the end on embedded servers, then ask Redis.

    .venv/bin/python -m bench.redis_memory [N]

Prints MEMORY USAGE of the job records and the growth of `used_memory` per job, which also counts
the completion event on the stream and every other key a job leaves behind until its TTL.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

from PIL import Image

from wanedit.sandbox.stack import LOCAL_ENV, SANDBOX_KEY, EmbeddedRedis, MotoS3, Worker

BUCKET = "wanedit-memory"


def main(count: int) -> None:
    from wanedit.sandbox.server import SandboxConfig, SandboxServer

    redis_server = EmbeddedRedis().start()
    s3_server = MotoS3().start()
    sandbox = SandboxServer(
        SandboxConfig(api_keys=(SANDBOX_KEY,), duration_min=1.0, duration_max=2.0)
    ).start()
    env = {
        **s3_server.env(),
        **LOCAL_ENV,
        "WANEDIT_REDIS_URL": redis_server.url,
        "WANEDIT_OUTPUT_URI": f"s3://{BUCKET}/edits/",
        "DASHSCOPE_API_KEY": SANDBOX_KEY,
        "DASHSCOPE_HTTP_BASE_URL": sandbox.base_url,
        "WANEDIT_POLL_FIRST_DELAY": "1",
        "WANEDIT_POLL_INTERVAL": "0.5",
        "WANEDIT_POLL_MAX_INTERVAL": "1",
    }
    os.environ.update(env)
    workdir = Path(tempfile.mkdtemp(prefix="wanedit-memory-"))
    worker = Worker(env, concurrency=2, log_path=workdir / "worker.log")
    try:
        import boto3

        from wanedit.config.clients import make_redis
        from wanedit.config.settings import get_settings
        from wanedit.producers import submit_edit, wait_for_job
        from wanedit.store.keys import Keys

        get_settings.cache_clear()
        settings = get_settings()
        redis = make_redis(settings)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        image = io.BytesIO()
        Image.new("RGB", (640, 640), (200, 80, 40)).save(image, "PNG")
        s3.put_object(Bucket=BUCKET, Key="inputs/a.png", Body=image.getvalue())
        worker.start()
        # One edit first, so the keys every deployment has (durations, rates, ...) exist.
        wait_for_job(submit_edit(prompt="warm up", images=[f"s3://{BUCKET}/inputs/a.png"]), 120)
        time.sleep(2)
        before = int(redis.info("memory")["used_memory"])
        ids = [
            submit_edit(
                prompt=f"Make the background a sunset, variant {index}",
                images=[f"s3://{BUCKET}/inputs/a.png"],
                metadata={"order": f"A-{index}"},
            )
            for index in range(count)
        ]
        statuses = [wait_for_job(job_id, timeout=300)["status"] for job_id in ids]
        time.sleep(2)  # the last polls and slot releases
        after = int(redis.info("memory")["used_memory"])
        records = [
            int(redis.memory_usage(Keys(settings.key_prefix).job(job_id)) or 0) for job_id in ids
        ]
        print(f"{count} jobs, statuses {sorted(set(statuses))}")
        print(f"MEMORY USAGE {Keys(settings.key_prefix).job('<id>')}: mean {mean(records):.0f} B, "
              f"max {max(records)} B")  # fmt: skip
        print(f"used_memory growth per job: {(after - before) / count:.0f} B")
        stream = redis.memory_usage(settings.events_stream) or 0
        print(f"MEMORY USAGE {settings.events_stream}: {stream} B for {count + 1} events")
    finally:
        worker.stop()
        sandbox.stop()
        s3_server.stop()
        redis_server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
