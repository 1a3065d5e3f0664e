"""The worker app in the test process: where the messages a step sends from here go."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wanedit.config.celery import celery_config
from wanedit.config.settings import Settings


@contextmanager
def workers_sending_to(settings: Settings) -> Iterator[None]:
    """Messages a step sends from this process go to these settings' broker and queue (the
    worker app is configured once per process, from the settings it was first imported with)."""
    from wanedit.workers.celery_app import app

    wanted = celery_config(settings)
    before = {name: app.conf[name] for name in wanted}

    def configure(values: dict[str, Any]) -> None:
        app.conf.update(values)
        app._pool = None
        app.amqp._producer_pool = None

    configure(wanted)
    try:
        yield
    finally:
        configure(before)
