"""The tests, the demo and `wanedit dev` never use the machine's own Redis on port 6379."""

from __future__ import annotations

import pytest

from wanedit.sandbox.stack import (
    SharedRedisRefused,
    Worker,
    check_own_redis,
    is_shared_redis_url,
    refuse_shared_redis,
)


@pytest.mark.parametrize(
    ("url", "shared"),
    [
        ("redis://127.0.0.1:6379/0", True),
        ("redis://localhost:6379/0", True),
        ("redis://localhost/0", True),  # no port: redis-py's default, 6379
        ("redis://:secret@127.0.0.1:6379/2", True),
        ("rediss://127.0.0.1:6379/0", True),
        ("redis://[::1]:6379/0", True),
        ("redis://127.0.1.1:6379/0", True),
        ("redis://0.0.0.0:6379/0", True),
        ("", True),  # unset: the settings' default, redis://127.0.0.1:6379/0
        ("redis://127.0.0.1:41234/0", False),
        ("redis://redis:6379/0", False),  # a compose service, not this machine
        ("redis://10.0.0.5:6379/0", False),
        ("unix:///tmp/redis.sock", False),
    ],
)
def test_which_urls_name_the_machines_redis(url: str, shared: bool) -> None:
    assert is_shared_redis_url(url) is shared


def test_check_own_redis_says_why() -> None:
    with pytest.raises(SharedRedisRefused) as raised:
        check_own_redis("redis://:hunter22@localhost:6379/0")
    message = str(raised.value)
    assert message.startswith("refusing to use the Redis on localhost:6379")
    assert "embedded server" in message and "WANEDIT_REDIS_URL" in message
    assert "hunter22" not in message
    assert check_own_redis("redis://127.0.0.1:41234/0") == "redis://127.0.0.1:41234/0"


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "redis://localhost:6379/0", "redis://localhost/0"]
)
def test_a_context_against_6379_fails_loudly_before_anything_is_sent(url: str) -> None:
    """tests/conftest.py installed the guard for this whole test process."""
    from wanedit.config.settings import load_settings
    from wanedit.intake.context import build_context

    with pytest.raises(SharedRedisRefused, match="refusing to use the Redis on"):
        build_context(load_settings(redis_url=url))


def test_the_default_settings_are_refused_too() -> None:
    import redis

    from wanedit.config.clients import make_redis
    from wanedit.config.settings import Settings

    default = Settings.model_fields["redis_url"].default
    assert is_shared_redis_url(default)
    with pytest.raises(SharedRedisRefused):
        make_redis(Settings(_env_file=None, redis_url=default))  # type: ignore[call-arg]
    with pytest.raises(SharedRedisRefused):
        redis.Redis()  # redis-py's own defaults: localhost:6379


def test_other_redis_urls_are_left_alone() -> None:
    from wanedit.config.settings import load_settings
    from wanedit.intake.context import build_context

    ctx = build_context(load_settings(redis_url="redis://127.0.0.1:1/0"))
    assert ctx.redis.connection_pool.connection_kwargs["port"] == 1


def test_installing_it_twice_is_harmless() -> None:
    refuse_shared_redis()
    refuse_shared_redis()
    with pytest.raises(SharedRedisRefused):
        check_own_redis("redis://127.0.0.1:6379/0")


def test_a_worker_without_its_own_redis_is_not_started(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WANEDIT_REDIS_URL", raising=False)
    worker = Worker({}, log_path=tmp_path / "worker.log")
    with pytest.raises(SharedRedisRefused):
        worker.start()
    assert worker.process is None
