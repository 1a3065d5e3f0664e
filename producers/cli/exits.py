"""Exit statuses of the `wanedit` commands, and the one place errors become them.

0 succeeded (or enqueued without --wait); 1 failed, canceled or timed out (or no such job);
2 invalid request or settings (nothing enqueued); 3 Redis or S3 unreachable (nothing enqueued).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import click

from wanedit.errors import BackendUnavailable, ConfigError, InvalidRequest, JobNotFound

EXIT_FAILED, EXIT_INVALID, EXIT_UNAVAILABLE = 1, 2, 3

P = ParamSpec("P")
R = TypeVar("R")


def die(message: str, code: int) -> NoReturn:
    """Print `wanedit: message` on stderr and exit with `code`."""
    click.echo(f"wanedit: {message}", err=True)
    sys.exit(code)


def _backend_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    # Imported when an error is on its way out, so `wanedit --version` stays quick.
    import redis
    from botocore.exceptions import BotoCoreError, ClientError

    return (redis.RedisError,), (BotoCoreError, ClientError)


def exit_codes(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command; a wanedit error ends it with one line on stderr and its exit status,
    never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except InvalidRequest as exc:
            for problem in exc.problems:
                click.echo(f"wanedit: invalid request: {problem}", err=True)
            sys.exit(EXIT_INVALID)
        except ConfigError as exc:
            die(str(exc), EXIT_INVALID)
        except JobNotFound as exc:
            die(str(exc), EXIT_FAILED)
        except BackendUnavailable as exc:
            die(str(exc), EXIT_UNAVAILABLE)
        except Exception as exc:
            redis_errors, s3_errors = _backend_errors()
            if isinstance(exc, redis_errors):
                die(f"Redis cannot be reached: {exc}", EXIT_UNAVAILABLE)
            if isinstance(exc, s3_errors):
                from wanedit.s3errors import classify_s3_error

                # A request's own fault (a missing bucket, a denied prefix) is bad input.
                failure = classify_s3_error(exc)
                code = EXIT_INVALID if failure.request_fault else EXIT_UNAVAILABLE
                die(f"S3: {exc}", code)
            raise

    return run


def until_interrupted(command: Callable[P, None]) -> Callable[P, None]:
    """For commands that run until stopped (`top`, `events --follow`, `listen`): Ctrl-C is
    how they end, with status 0 and no traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except KeyboardInterrupt:
            return

    return run
