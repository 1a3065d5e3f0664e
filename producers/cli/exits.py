"""Exit statuses of the `wanedit` commands, and the one place errors become them.

EXIT_TABLE below is the table `wanedit --help` and docs/usage.md show:

0 succeeded (or enqueued without --wait; cancel: canceled); 1 the job failed; 2 invalid request,
settings or idempotency key reused with another request (nothing enqueued); 3 Redis or S3
unreachable (nothing enqueued); 4 no such job (or batch); 5 the job was canceled; 6 not ended
yet (queued, submitted or running; --wait timed out; cancel: requested, not settled yet);
7 cancel too late (the provider started it: its result is delivered and billed); 8 cancel of a
job that had already ended (nothing changed).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import click

from wanedit.errors import BackendUnavailable, ConfigError, InvalidRequest, JobNotFound

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_UNAVAILABLE = 0, 1, 2, 3
EXIT_NOT_FOUND, EXIT_CANCELED, EXIT_NOT_ENDED, EXIT_TOO_LATE, EXIT_ENDED = 4, 5, 6, 7, 8

# (code, meaning): printed by `wanedit --help` and documented in docs/usage.md.
EXIT_TABLE = (
    (EXIT_OK, "succeeded (submit without --wait: enqueued; cancel: canceled)"),
    (EXIT_FAILED, "the job failed"),
    (
        EXIT_INVALID,
        "invalid request or settings, or an idempotency key reused with another request",
    ),
    (EXIT_UNAVAILABLE, "Redis or S3 cannot be reached"),
    (EXIT_NOT_FOUND, "no such job (or batch)"),
    (EXIT_CANCELED, "the job was canceled"),
    (
        EXIT_NOT_ENDED,
        "not ended yet: queued, submitted or running (cancel: requested, not settled)",
    ),
    (EXIT_TOO_LATE, "cancel too late: the provider started it; its result is delivered and billed"),
    (EXIT_ENDED, "cancel: the job had already ended; nothing changed"),
)

_BY_STATUS = {"succeeded": EXIT_OK, "failed": EXIT_FAILED, "canceled": EXIT_CANCELED}


def status_exit(status: str) -> int:
    """The exit status that says how a job stands: ended (by its outcome) or not yet."""
    return _BY_STATUS.get(status, EXIT_NOT_ENDED)


def exit_table_text() -> str:
    """EXIT_TABLE as help text: one line per code."""
    return "\n".join(f"{code}  {meaning}" for code, meaning in EXIT_TABLE)


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
            die(str(exc), EXIT_NOT_FOUND)
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
