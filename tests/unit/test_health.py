"""`python -m wanedit.workers.health`: the container health checks, against a real HTTP server
and files."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wanedit.workers import health


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/metrics" else 503
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"wanedit_up 1\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_2xx_answer_is_healthy(server: str) -> None:
    assert health.main([f"{server}/metrics"]) == 0


def test_an_error_status_is_unhealthy_and_says_which(server: str, capsys) -> None:
    assert health.main([f"{server}/healthcheck"]) == 1
    assert f"unhealthy: {server}/healthcheck: HTTP 503" in capsys.readouterr().err


def test_nothing_listening_is_unhealthy(capsys) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert health.main([f"http://127.0.0.1:{port}/metrics"]) == 1
    assert "unhealthy:" in capsys.readouterr().err


def test_the_worker_check_reads_the_metrics_port_setting(server: str, monkeypatch) -> None:
    from wanedit.config.settings import get_settings

    monkeypatch.setenv("WANEDIT_METRICS_PORT", server.rsplit(":", 1)[1])
    get_settings.cache_clear()
    try:
        assert health.main([]) == 0
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("suffixes", "age", "healthy"),
    [
        ([""], 10, True),  # dbm.gnu: the name itself
        ([".dat", ".dir", ".bak"], 10, True),  # dbm.dumb: suffixed files
        ([".db"], 10, True),  # dbm.ndbm
        ([""], 900, False),
        ([], 0, False),
    ],
)
def test_a_schedule_file_must_be_recent(tmp_path: Path, suffixes, age, healthy) -> None:
    path = tmp_path / "celerybeat-schedule"
    for suffix in suffixes:
        written = tmp_path / f"celerybeat-schedule{suffix}"
        written.write_bytes(b"x")
        os.utime(written, (time.time() - age, time.time() - age))
    assert health.main(["--file", str(path), "--max-age", "600"]) == (0 if healthy else 1)


@pytest.mark.parametrize(
    "argv",
    [
        ["--file", "/tmp/x"],
        ["--file", "/tmp/x", "--max-age", "soon"],
        ["metrics"],
        ["http://a", "http://b"],
    ],
)
def test_arguments_that_name_no_check_are_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(health.UsageError):
        health.parse(argv)
    assert health.main(argv) == 2


def test_without_metrics_a_worker_is_pinged_and_an_unreachable_broker_is_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "WANEDIT_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    env.pop("WANEDIT_METRICS_PORT", None)
    result = subprocess.run(
        [sys.executable, "-m", "wanedit.workers.health"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.startswith("unhealthy: celery@"), result.stderr
    assert "Connection refused" in result.stderr and "Traceback" not in result.stderr
