"""The Celery application. `celery -A wanedit.workers worker` finds it as `wanedit.workers.app`."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_init,
    worker_init,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from wanedit.config.celery import celery_config, check_worker
from wanedit.config.settings import get_settings
from wanedit.errors import ConfigError

log = logging.getLogger("wanedit.workers")
app = Celery("wanedit")
app.conf.update(celery_config(get_settings()))
app.conf.imports = ("wanedit.workers.tasks", "wanedit.workers.intake", "wanedit.workers.batches")


@worker_init.connect
def _check_settings(**_: Any) -> None:
    """Fail at start-up with one clear line, not at the first task."""
    try:
        check_worker(get_settings())
    except ConfigError as exc:
        print(f"wanedit: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@celeryd_init.connect
def _json_from_the_start(instance: Any = None, **_: Any) -> None:
    """JSON logs: every line on the output is a JSON object, from the first one. No start-up
    banner, and Python's warnings (Celery's own, at start-up) go through logging too."""
    settings = get_settings()
    if settings.log_format != "json":
        return
    from wanedit.logs import configure, settings_secrets

    if instance is not None:
        instance.quiet = True
    configure("json", secrets=settings_secrets(settings))
    logging.captureWarnings(True)
    # Celery's signal handlers write "worker: Warm shutdown" straight to the output, past
    # logging (which is not safe in a signal handler): write those as JSON lines too.
    import celery.apps.worker as celery_worker

    if hasattr(celery_worker, "safe_say"):
        celery_worker.safe_say = _say_as_json


def _say_as_json(message: str, f: Any = sys.__stderr__) -> None:
    from wanedit.logs import signal_line

    with contextlib.suppress(OSError, ValueError, AttributeError):  # best effort, as Celery's
        os.write(f.fileno(), signal_line(message, "celery.apps.worker").encode())


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger: logging.Logger | None = None, **_: Any) -> None:
    """Celery's handlers (its own lines included) get job ids, redaction and the chosen format."""
    from celery.utils.log import get_multiprocessing_logger

    from wanedit.logs import apply, settings_secrets

    settings = get_settings()
    secrets = tuple(settings_secrets(settings))
    for target in (logger, get_multiprocessing_logger()):
        if target is not None:
            apply(target, settings.log_format, lambda: secrets)


_metrics_server: Any = None


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    """`/metrics` from the main process (not the pool), when WANEDIT_METRICS_PORT is set."""
    global _metrics_server
    settings = get_settings()
    if settings.metrics_port is None or _metrics_server is not None:
        return
    from wanedit.config.clients import make_admission, make_metrics, make_redis, read_snapshot
    from wanedit.workers.metrics import serve

    client = make_redis(settings)
    metrics, admission = make_metrics(settings, client), make_admission(settings, client)
    try:
        _metrics_server = serve(
            settings.metrics_port, lambda: read_snapshot(settings, metrics, admission)
        )
    except OSError as exc:
        # The worker goes on working; a scrape target that is down is what alerts on it.
        log.error("metrics: cannot serve on port %d: %s", settings.metrics_port, exc)
        return
    log.info("metrics: serving /metrics on port %d", settings.metrics_port)


@worker_shutdown.connect
def _stop_metrics(**_: Any) -> None:
    if _metrics_server is not None:
        _metrics_server.shutdown()


@worker_process_init.connect
def _fresh_clients(**_: Any) -> None:
    """New clients for each pool process, built before its first task: a cold S3 client costs
    about a second, which would otherwise delay the first create after every start or scale-up."""
    from wanedit.workers.context import get_context, reset_context

    reset_context()
    try:
        get_context()
    except Exception as exc:  # the first task builds it again, and reports what is wrong
        log.warning("worker clients not ready yet: %s", exc)
