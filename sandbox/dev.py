"""``wanedit dev``: the whole stack on this machine, without Docker, until Ctrl-C.

An embedded valkey-server, moto's S3 server (with the output bucket), the provider sandbox
with short tasks, one Celery worker and beat. The environment that points wanedit at them is
printed and, with ``--env``, written to a file in the form the settings read (``.env`` in the
working directory), so ``wanedit submit ...`` run from there uses this stack.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

import click

from wanedit.sandbox.cli import _duration
from wanedit.sandbox.stack import Beat, LocalServers, Receiver, Worker, refuse_shared_redis

BUCKET = "wanedit-dev"
# The first line of every file this command writes: it overwrites and removes only those.
MARKER = "# written by `wanedit dev`; removed when it stops"
# Read by load_settings() from the process environment only, never from the file itself.
PROCESS_ONLY = frozenset({"WANEDIT_ENV_FILE"})
_PLAIN = re.compile(r"^[A-Za-z0-9_./:@%+,=-]*$")


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: stop everything."""


def dotenv_text(env: Mapping[str, str]) -> str:
    """`NAME=value` lines as pydantic-settings reads them (single quotes where needed)."""
    lines = [MARKER]
    for name in sorted(env):
        if name in PROCESS_ONLY:
            continue
        value = env[name]
        if not _PLAIN.match(value):
            if "'" in value or "\n" in value:
                raise ValueError(f"{name}: cannot be written to a .env file as is")
            value = f"'{value}'"
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def _ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") == MARKER
    except FileNotFoundError:
        return True
    except (OSError, UnicodeDecodeError):
        return False


def check_ours(path: Path) -> None:
    """Refuse to overwrite a file this command did not write (a user's own `.env`)."""
    if not _ours(path):
        raise click.ClickException(
            f"{path} exists and was not written by `wanedit dev`; move it away or give "
            "--env another path"
        )


def write_env(path: Path, env: Mapping[str, str]) -> None:
    """Write the file whole, so a reader never sees half of it."""
    check_ours(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(dotenv_text(env), encoding="utf-8")
    partial.replace(path)


def remove_env(path: Path) -> None:
    if path.exists() and _ours(path):
        path.unlink()


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def _watch(processes: Mapping[str, Worker | Beat | Receiver]) -> None:
    """Return when a signal arrives; a process that ended by itself ends the stack."""
    while True:
        for name, process in processes.items():
            if process.process is not None and process.process.poll() is not None:
                raise click.ClickException(
                    f"the {name} exited with {process.process.returncode}; see its log"
                )
        time.sleep(0.5)


@click.command(name="dev")
@click.option(
    "--env",
    "env_file",
    is_flag=False,
    flag_value=".env",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the environment to FILE (--env alone: .env); removed on exit.",
)
@click.option(
    "--duration",
    default="2:5",
    show_default=True,
    callback=_duration,
    help="Sandbox task time MIN:MAX seconds.",
)
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--events/--no-events",
    default=True,
    show_default=True,
    help="Run `wanedit provider-events` and have the sandbox post each task's end to it "
    "(the events mode); --no-events: tasks are noticed by looking.",
)
@click.option(
    "--logs",
    default=".wanedit-dev",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the worker's and beat's logs.",
)
def command(
    env_file: Path | None,
    duration: tuple[float, float],
    concurrency: int,
    events: bool,
    logs: Path,
) -> None:
    """Run the whole stack locally (embedded Redis, S3, the provider sandbox posting task-end
    events, the events receiver, a worker and beat) until Ctrl-C, and print the environment
    that points wanedit at it."""
    refuse_shared_redis()  # every Redis client of this process must be the embedded one
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_on_signal)
    if env_file is not None:
        check_ours(env_file)  # before anything is started
    logs.mkdir(parents=True, exist_ok=True)
    servers = LocalServers(BUCKET, duration=duration, events=events)
    processes: dict[str, Worker | Beat | Receiver] = {}
    try:
        click.echo("wanedit dev: starting valkey-server, moto S3 and the sandbox", err=True)
        servers.start()
        env = servers.env()
        if servers.events_port is not None:
            log_path = logs / "provider-events.log"
            processes["receiver"] = Receiver(env, port=servers.events_port, log_path=log_path)
        processes["worker"] = Worker(env, concurrency=concurrency, log_path=logs / "worker.log")
        processes["beat"] = Beat(env, workdir=logs, log_path=logs / "beat.log")
        click.echo(f"starting {', '.join(processes)} (logs: {logs}/)", err=True)
        for process in processes.values():
            try:
                process.start()
            except RuntimeError as exc:
                raise click.ClickException(str(exc)) from None
        shown = {name: value for name, value in env.items() if name not in PROCESS_ONLY}
        if env_file is not None:
            write_env(env_file, shown)
        click.echo("\n".join(f"{name}={shown[name]}" for name in sorted(shown)))
        where = f"written to {env_file}; run wanedit there" if env_file else "export it"
        click.echo(f"\nready ({where}); Ctrl-C stops everything", err=True)
        _watch(processes)
    except Stopped as stopped:
        click.echo(f"\nwanedit dev: {stopped}, stopping", err=True)
    finally:
        # Signals are ignored from here on: a second Ctrl-C must not cut the cleanup short.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        for process in reversed(processes.values()):
            process.stop()
        servers.stop()
        if env_file is not None:
            remove_env(env_file)
        click.echo("wanedit dev: stopped", err=True)
