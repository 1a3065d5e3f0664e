"""The one place a command's error becomes a line on stderr and the documented exit status."""

from __future__ import annotations

import click
import pytest
import redis
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner

from wanedit.errors import BackendUnavailable, ConfigError, InvalidRequest, JobNotFound
from wanedit.producers.cli.exits import exit_codes, until_interrupted


def run(error: BaseException | None) -> tuple[int, str, str]:
    @click.command()
    @exit_codes
    def command() -> None:
        click.echo("started")
        if error is not None:
            raise error

    result = CliRunner().invoke(command, [])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("error", "code", "stderr"),
    [
        (None, 0, ""),
        (
            InvalidRequest(["n: 9 is outside 1 to 4 images", "seed: -1 is outside 0 to 9"]),
            2,
            "wanedit: invalid request: n: 9 is outside 1 to 4 images\n"
            "wanedit: invalid request: seed: -1 is outside 0 to 9\n",
        ),
        (ConfigError("invalid settings: WANEDIT_X: bad"), 2, "wanedit: invalid settings"),
        (JobNotFound("job 00 does not exist"), 4, "wanedit: job 00 does not exist\n"),
        (BackendUnavailable("Redis cannot be reached: boom"), 3, "wanedit: Redis cannot be"),
        (redis.ConnectionError("refused"), 3, "wanedit: Redis cannot be reached: refused\n"),
        (EndpointConnectionError(endpoint_url="http://s3"), 3, "wanedit: S3: Could not connect"),
    ],
)
def test_errors_become_exit_statuses(error, code, stderr):
    exit_code, out, err = run(error)
    assert (exit_code, out) == (code, "started\n")
    assert err.startswith(stderr) if stderr else err == ""
    assert "Traceback" not in err


def test_an_unexpected_error_is_not_hidden():
    exit_code, _, _ = run(RuntimeError("a bug"))
    assert exit_code == 1
    result = CliRunner().invoke(click.command()(exit_codes(lambda: 1 / 0)), [])
    assert isinstance(result.exception, ZeroDivisionError)


def test_ctrl_c_ends_a_long_running_command_quietly_and_aborts_any_other():
    @click.command()
    @exit_codes
    @until_interrupted
    def follow() -> None:
        raise KeyboardInterrupt

    @click.command()
    @exit_codes
    def submit() -> None:
        raise KeyboardInterrupt

    assert CliRunner().invoke(follow, []).exit_code == 0
    aborted = CliRunner().invoke(submit, [])
    assert aborted.exit_code == 1
    assert "Aborted!" in aborted.stderr
