"""The embedded servers the scale benchmark's in-process figures run against: a real
valkey-server and moto's S3 server on free ports, with the producer's settings pointed at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from bench.common import BUCKET, s3_client
from wanedit.sandbox.stack import LOCAL_ENV, SANDBOX_KEY, EmbeddedRedis, MotoS3, patched_env


@dataclass
class Servers:
    redis_url: str
    env: dict[str, str]
    s3: Any


def reset_producer() -> None:
    from wanedit.config.settings import get_settings
    from wanedit.intake.context import reset_context

    get_settings.cache_clear()
    reset_context()


@contextmanager
def servers(extra_env: dict[str, str] | None = None) -> Iterator[Servers]:
    """Fresh embedded Redis and S3 (the bench bucket made), stopped on the way out."""
    with ExitStack() as stack:
        redis_server = EmbeddedRedis().start()
        stack.callback(redis_server.stop)
        s3_server = MotoS3().start()
        stack.callback(s3_server.stop)
        env = {
            **s3_server.env(),
            **LOCAL_ENV,
            "WANEDIT_REDIS_URL": redis_server.url,
            "WANEDIT_OUTPUT_URI": f"s3://{BUCKET}/out/",
            "DASHSCOPE_API_KEY": SANDBOX_KEY,
            **(extra_env or {}),
        }
        stack.enter_context(patched_env(env))
        stack.callback(reset_producer)
        reset_producer()
        s3 = s3_client(env)
        s3.create_bucket(Bucket=BUCKET)
        yield Servers(redis_server.url, env, s3)
