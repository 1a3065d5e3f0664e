"""The Celery application. `celery -A workers worker` finds it as `workers.app`."""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready

from config.celery import celery_config
from config.settings import get_settings
from wanedit.errors import ConfigError

app = Celery("wanedit")
app.conf.update(celery_config(get_settings()))
app.conf.imports = ("workers.tasks", "workers.intake", "workers.batches")


@worker_init.connect
def _check_settings(**_: Any) -> None:
    """Fail at start-up with one clear line, not at the first task."""
    try:
        get_settings().check_worker()
    except ConfigError as exc:
        print(f"wanedit: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@worker_ready.connect
def _start_admission(**_: Any) -> None:
    """Jobs may already wait in the backlog: look at once rather than at the next nudge."""
    app.send_task("wanedit.admit")


@worker_process_init.connect
def _fresh_clients(**_: Any) -> None:
    """New clients for each pool process, built before its first task: a cold S3 client costs
    about a second, which would otherwise delay the first create after every start or scale-up."""
    from workers.context import get_context, reset_context

    reset_context()
    try:
        get_context()
    except Exception as exc:  # the first task builds it again, and reports what is wrong
        logging.getLogger("wanedit.workers").warning("worker clients not ready yet: %s", exc)
