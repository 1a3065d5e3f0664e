"""`wanedit dev`: the whole local stack as one process; `wanedit submit` beside its `.env` uses
it, and a signal leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from dotenv import dotenv_values

from tests.conftest import make_image

pytestmark = pytest.mark.integration

WANEDIT = str(Path(sys.executable).with_name("wanedit"))
READY_TIMEOUT = 120


def clean_env(home: Path) -> dict[str, str]:
    """This process's environment with no wanedit, DashScope or AWS setting, and no other
    source of AWS credentials: whatever the commands use must come from the `.env` file."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("WANEDIT_", "AWS_", "DASHSCOPE_"))
    }
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(home / "no-credentials")
    env["AWS_CONFIG_FILE"] = str(home / "no-config")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (a worker and beat run in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Dev:
    def __init__(self, folder: Path, env: dict[str, str], *args: str) -> None:
        self.folder = folder
        self.log = open(folder / "dev.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [WANEDIT, "dev", *args],
            cwd=folder,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_for(self, path: Path) -> dict[str, str]:
        deadline = time.monotonic() + READY_TIMEOUT
        while not path.exists():
            assert self.process.poll() is None, f"wanedit dev exited: {self.output()}"
            assert time.monotonic() < deadline, f"no {path.name} yet: {self.output()}"
            time.sleep(0.2)
        return {name: value or "" for name, value in dotenv_values(path).items()}

    def output(self) -> str:
        return (self.folder / "dev.log").read_text(errors="replace")

    def stop(self, signum: int) -> tuple[int, set[int]]:
        """Send `signum`; the exit code and which of its processes are still alive."""
        below = descendants(self.process.pid)
        assert below, "wanedit dev runs valkey-server, a worker and beat as child processes"
        self.process.send_signal(signum)
        code = self.process.wait(60)
        deadline = time.monotonic() + 10
        while [pid for pid in below if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.log.close()
        return code, {pid for pid in below if alive(pid)}

    def kill(self) -> None:
        """After a failed test: nothing of it may outlive the test."""
        for pid in descendants(self.process.pid) | {self.process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)
        self.log.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[Dev] = []

    def run(*args: str) -> Dev:
        dev = Dev(tmp_path, clean_env(tmp_path), *args)
        started.append(dev)
        return dev

    yield run
    for dev in started:
        if dev.process.poll() is None:
            dev.kill()


def test_submit_beside_its_env_file_uses_the_stack(start, tmp_path: Path) -> None:
    dev = start("--env")  # no value: .env, the file the settings read
    settings = dev.wait_for(tmp_path / ".env")
    assert settings["WANEDIT_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert not settings["WANEDIT_REDIS_URL"].startswith("redis://127.0.0.1:6379/")
    assert "WANEDIT_ENV_FILE" not in settings
    (tmp_path / "in.png").write_bytes(make_image(512, 512, (200, 30, 30)))

    submitted = subprocess.run(
        [WANEDIT, "submit", "--prompt", "Make it blue", "--image", "in.png", "--wait"],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitted.returncode == 0, submitted.stderr + dev.output()
    assert "succeeded" in submitted.stdout
    uri = next(word for word in submitted.stdout.split() if word.startswith("s3://"))
    assert uri.startswith(settings["WANEDIT_OUTPUT_URI"])

    s3 = boto3.session.Session(
        aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        region_name=settings["AWS_DEFAULT_REGION"],
    ).client("s3", endpoint_url=settings["AWS_ENDPOINT_URL_S3"])
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body.startswith(b"\x89PNG\r\n\x1a\n")

    code, left = dev.stop(signal.SIGTERM)
    assert (code, left) == (0, set()), dev.output()
    assert not (tmp_path / ".env").exists(), "the stack is gone, and so is its environment"
    assert (tmp_path / ".wanedit-dev" / "worker.log").exists()


def test_ctrl_c_stops_everything(start, tmp_path: Path) -> None:
    dev = start("--env", "stack.env", "--logs", "logs")
    dev.wait_for(tmp_path / "stack.env")
    code, left = dev.stop(signal.SIGINT)
    assert (code, left) == (0, set()), dev.output()
    assert "stopped" in dev.output()
    assert not (tmp_path / "stack.env").exists()


def test_a_users_own_env_file_is_never_overwritten(start, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WANEDIT_OUTPUT_URI=s3://mine/edits/\n")
    dev = start("--env")
    assert dev.process.wait(60) != 0
    dev.log.close()
    assert "was not written by `wanedit dev`" in dev.output()
    assert (tmp_path / ".env").read_text() == "WANEDIT_OUTPUT_URI=s3://mine/edits/\n"
    assert descendants(dev.process.pid) == set()
