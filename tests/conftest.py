"""Shared fixtures: real servers, started once per test session, failing loudly if they cannot."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from wanedit.sandbox.stack import check_own_redis, refuse_shared_redis

# Every test reads its settings from the environment it sets, never from a developer's `.env`
# (worker processes inherit this).
os.environ["WANEDIT_ENV_FILE"] = ""
# The tests start their own Redis: a client for the machine's Redis on 6379 (another
# program's) fails the test that makes it, with a message saying so, before anything is sent.
refuse_shared_redis()


def make_image(width: int, height: int, color: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    """A real image of the given size, with a visible pattern."""
    image = Image.new("RGB", (width, height), color)
    for x in range(0, width, 64):
        for y in range(0, height, 64):
            if (x // 64 + y // 64) % 2 == 0:
                image.paste(
                    (255 - color[0], 255 - color[1], 255 - color[2]), (x, y, x + 32, y + 32)
                )
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
def image_file(tmp_path: Path):
    def write(name: str, width: int = 512, height: int = 512, color=(200, 80, 40), fmt="PNG"):
        path = tmp_path / name
        path.write_bytes(make_image(width, height, color, fmt))
        return path

    return write


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis-compatible server: WANEDIT_TEST_REDIS_URL, else an embedded valkey-server."""
    given = os.environ.get("WANEDIT_TEST_REDIS_URL")
    if given:
        yield check_own_redis(given)
        return
    from wanedit.sandbox.stack import EmbeddedRedis

    server = EmbeddedRedis().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server on a free port; yields the AWS_* environment pointing at it."""
    from wanedit.sandbox.stack import MotoS3

    server = MotoS3().start()
    try:
        yield server.env()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]
