"""Container health checks that cost almost nothing: one local HTTP GET, or one file's age.

    python -m wanedit.workers.health           # a worker: its /metrics, else a ping of its node
    python -m wanedit.workers.health URL       # any HTTP endpoint (Flower, the sandbox)
    python -m wanedit.workers.health --file PATH --max-age SECONDS   # beat: schedule saved lately

Exit status 0 when healthy; otherwise 1 and one line on stderr saying why.
"""

from __future__ import annotations

import glob
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial

from wanedit.errors import ConfigError

TIMEOUT = 5.0


class Unhealthy(Exception):
    """The check failed; the message says what was looked at and what was wrong."""


def check_url(url: str, timeout: float = TIMEOUT) -> None:
    """A 2xx answer from `url`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise Unhealthy(f"{url}: HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise Unhealthy(f"{url}: {exc}") from None
    if not 200 <= status < 300:
        raise Unhealthy(f"{url}: HTTP {status}")


def check_file(path: str, max_age: float, now: float | None = None) -> None:
    """A file named `path` or `path.*` (dbm adds suffixes) modified in the last `max_age` s.

    Celery beat saves its schedule file at least every 3 minutes while it sends tasks."""
    candidates = [path, *glob.glob(glob.escape(path) + ".*")]
    ages = []
    for candidate in candidates:
        try:
            ages.append((time.time() if now is None else now) - os.path.getmtime(candidate))
        except OSError:
            continue
    if not ages:
        raise Unhealthy(f"{path}: no such file")
    if min(ages) > max_age:
        raise Unhealthy(f"{path}: last written {min(ages):.0f} s ago, over {max_age:.0f} s")


def check_worker() -> None:
    """The worker's metrics endpoint when WANEDIT_METRICS_PORT is set, else a control ping."""
    from wanedit.config.settings import get_settings

    port = get_settings().metrics_port
    if port is not None:
        check_url(f"http://127.0.0.1:{port}/metrics")
        return
    from wanedit.workers.celery_app import app

    node = f"celery@{socket.gethostname()}"
    try:
        replies = app.control.ping(destination=[node], timeout=TIMEOUT)
    except Exception as exc:  # the broker is unreachable: one line, not a traceback
        raise Unhealthy(f"{node}: {exc}") from None
    if not replies:
        raise Unhealthy(f"{node}: no answer to a ping within {TIMEOUT:.0f} s")


class UsageError(Exception):
    """The arguments name no check."""


def parse(argv: list[str]) -> Callable[[], None]:
    """The check the arguments ask for; UsageError when they ask for none."""
    if not argv:
        return check_worker
    if len(argv) == 4 and argv[0] == "--file" and argv[2] == "--max-age":
        try:
            max_age = float(argv[3])
        except ValueError:
            raise UsageError(f"--max-age {argv[3]!r} is not a number of seconds") from None
        return partial(check_file, argv[1], max_age)
    if len(argv) == 1 and argv[0].startswith(("http://", "https://")):
        return partial(check_url, argv[0])
    raise UsageError("expected no argument, a URL, or --file PATH --max-age SECONDS")


def main(argv: list[str]) -> int:
    try:
        check = parse(argv)
    except UsageError as exc:
        print(f"usage: {exc}", file=sys.stderr)
        return 2
    try:
        check()
    except (Unhealthy, ConfigError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
