"""The events designs' receiver: a real ``wanedit provider-events`` process on a free port."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from wanedit.sandbox.stack import Receiver, free_port


class EventsReceiver:
    """``wanedit provider-events --host 127.0.0.1 --port P`` with its own token (the process is
    `wanedit.sandbox.stack.Receiver`).

    ``url`` is what the sandbox posts to (the token in its query string, as an EventBridge HTTP
    target would carry it).
    """

    def __init__(self, *, log_path: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        self.port = free_port()
        self.log_path = log_path
        self._process: Receiver | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events?token={self.token}"

    def env(self) -> dict[str, str]:
        """The receiver's token setting; the worker needs it too."""
        return {"WANEDIT_PROVIDER_EVENTS_TOKEN": self.token}

    def start(self, env: Mapping[str, str], timeout: float = 30.0) -> EventsReceiver:
        process = Receiver({**env, **self.env()}, port=self.port, log_path=self.log_path)
        self._process = process
        process.start(timeout)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
