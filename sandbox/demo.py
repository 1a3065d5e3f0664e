"""`make demo`: a single-image edit and a 3-image fusion through the production Celery tasks,
on embedded servers (valkey-server, moto S3, the provider sandbox). No Docker, no API key."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PIL import Image, ImageDraw

from wanedit.sandbox.stack import LocalServers, Receiver, Worker, refuse_shared_redis

BUCKET = "wanedit-demo"
HERE = Path.cwd() / ".demo"


def _sample_inputs(folder: Path) -> list[Path]:
    """Three recognisable pictures, drawn here so the demo needs no network."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = [
        ("dress.png", (640, 800), (235, 225, 205), "dress"),
        ("clock.jpg", (800, 600), (200, 220, 240), "clock"),
        ("vase.png", (600, 600), (245, 235, 215), "vase"),
    ]
    paths = []
    for name, size, background, shape in specs:
        image = Image.new("RGB", size, background)
        draw = ImageDraw.Draw(image)
        w, h = size
        if shape == "dress":
            draw.polygon([(w * 0.4, h * 0.15), (w * 0.6, h * 0.15), (w * 0.8, h * 0.9),
                          (w * 0.2, h * 0.9)], fill=(220, 60, 120))  # fmt: skip
        elif shape == "clock":
            draw.ellipse((w * 0.3, h * 0.2, w * 0.7, h * 0.8), fill=(30, 80, 200), width=8)
            draw.line((w * 0.5, h * 0.5, w * 0.5, h * 0.3), fill="white", width=10)
            draw.line((w * 0.5, h * 0.5, w * 0.62, h * 0.5), fill="white", width=10)
        else:
            draw.rectangle((0, h * 0.75, w, h), fill=(120, 80, 40))
            draw.ellipse((w * 0.35, h * 0.3, w * 0.65, h * 0.78), fill=(40, 150, 90))
        draw.text((10, 10), name, fill="black")
        path = folder / name
        image.save(path)
        paths.append(path)
    return paths


def main() -> None:
    refuse_shared_redis()  # everything below talks to the embedded server only
    HERE.mkdir(exist_ok=True)
    print("wanedit demo: starting an embedded valkey-server, moto S3 and the provider sandbox")
    # The sandbox posts each task's end to the events receiver, as the provider's EventBridge
    # rule would: each edit's result is asked for once, when its task has ended.
    servers = LocalServers(BUCKET, duration=(2.0, 5.0), events=True).start()
    env = {
        **servers.env(),
        # The demo's inputs are drawn here; the Python API reads local files only below these.
        "WANEDIT_LOCAL_INPUT_DIRS": str((HERE / "inputs").resolve()),
    }
    os.environ.update(env)
    worker = Worker(env, concurrency=2, log_path=HERE / "worker.log")
    assert servers.events_port is not None
    receiver = Receiver(env, port=servers.events_port, log_path=HERE / "provider-events.log")
    try:
        import boto3

        from wanedit.config.clients import make_redis
        from wanedit.config.settings import get_settings
        from wanedit.producers import submit_edit, wait_for_job
        from wanedit.store.events import read_events

        get_settings.cache_clear()
        s3 = boto3.client("s3")
        print(f"  redis   {env['WANEDIT_REDIS_URL']}\n  s3      {env['AWS_ENDPOINT_URL_S3']}")
        print(f"  sandbox {env['DASHSCOPE_HTTP_BASE_URL']}")
        print(f"starting the events receiver: wanedit provider-events ({receiver.url}/events)")
        receiver.start()
        print("starting a worker: celery -A wanedit.workers worker (log: .demo/worker.log)")
        worker.start()

        dress, clock, vase = _sample_inputs(HERE / "inputs")
        started = time.monotonic()
        single = submit_edit(
            prompt="Change the dress to a vintage lace dress",
            images=[str(dress)],
            size="1024*1280",
            metadata={"demo": "single-image edit"},
        )
        fusion = submit_edit(
            prompt="Place the clock from Image 2 next to the vase in Image 3, keep Image 1's style",
            images=[str(dress), str(clock), str(vase)],
            n=2,
            size="1280*960",
            seed=7,
            metadata={"demo": "3-image fusion"},
        )
        print(f"enqueued {single} (single-image edit) and {fusion} (3-image fusion, n=2)")
        for job_id in (single, fusion):
            job = wait_for_job(job_id, timeout=120)
            print(f"\njob {job_id}: {job['status']} after {time.monotonic() - started:.1f} s")
            for output in job["outputs"]:
                if "uri" not in output:
                    print(f"  [{output['index']}] failed: {output['error']}")
                    continue
                bucket, _, key = output["uri"].removeprefix("s3://").partition("/")
                local = HERE / "outputs" / job_id / f"{output['index']}.png"
                local.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(local))
                print(f"  [{output['index']}] {output['uri']}\n      copy: {local}")
            if job["error"]:
                print(f"  error: {job['error']}")

        settings = get_settings()
        print(f"\nevents on the Redis Stream {settings.events_stream!r}:")
        for entry_id, event in read_events(make_redis(settings), settings.events_stream):
            print(f"  {entry_id} {json.dumps(event)}")
        stats = servers.sandbox.stats()
        print(
            f"\nthe provider was asked {stats['queries']} times about {stats['creates']} tasks "
            f"({stats['events_sent']} task-end events received)"
        )
    finally:
        worker.stop()
        receiver.stop()
        servers.stop()
    print(
        "\ndone: the output images are in .demo/outputs/ (the servers were embedded and are gone)"
    )


if __name__ == "__main__":
    main()
