"""The events designs' receiver: a real ``wanedit provider-events`` process on a free port."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import requests

from wanedit.sandbox.stack import free_port

HOST = "127.0.0.1"


def wanedit_command() -> list[str]:
    """The ``wanedit`` console script of this environment (the one beside its python)."""
    script = Path(sys.executable).with_name("wanedit")
    if script.exists():
        return [str(script)]
    found = shutil.which("wanedit")
    if found:
        return [found]
    return [sys.executable, "-c", "from wanedit.producers.cli import main; main()"]


class EventsReceiver:
    """``wanedit provider-events --host 127.0.0.1 --port P`` with its own token.

    ``url`` is what the sandbox posts to (the token in its query string, as an EventBridge HTTP
    target would carry it).
    """

    def __init__(self, *, log_path: Path, cwd: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        self.port = free_port()
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/events?token={self.token}"

    def env(self) -> dict[str, str]:
        """The receiver's token setting; the worker needs it too."""
        return {"WANEDIT_PROVIDER_EVENTS_TOKEN": self.token}

    def start(self, env: Mapping[str, str], timeout: float = 30.0) -> EventsReceiver:
        command = [*wanedit_command(), "provider-events", "--host", HOST, "--port", str(self.port)]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env, **self.env()},
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"wanedit provider-events exited with {self.process.returncode}: "
                    f"see {self.log_path}"
                )
            try:
                if requests.get(f"http://{HOST}:{self.port}/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"wanedit provider-events did not answer /healthz in {timeout:g} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log:
            self._log.close()
            self._log = None
