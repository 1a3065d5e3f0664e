"""The environment file `wanedit dev` writes, read back as the settings read it."""

from __future__ import annotations

import click
import pytest

from wanedit.config.settings import load_settings
from wanedit.sandbox.dev import MARKER, check_ours, dotenv_text, remove_env, write_env

STACK = {
    "WANEDIT_REDIS_URL": "redis://127.0.0.1:40001/0",
    "WANEDIT_OUTPUT_URI": "s3://wanedit-dev/edits/",
    "WANEDIT_ENV_FILE": "",
    "WANEDIT_ALLOW_PRIVATE_URLS": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:40002",
    "DASHSCOPE_HTTP_BASE_URL": "http://127.0.0.1:40003/api/v1",
    "WANEDIT_POLL_FIRST_DELAY": "2",
}


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("redis://127.0.0.1:40001/0", "X=redis://127.0.0.1:40001/0"),
        ("", "X="),
        ("two words", "X='two words'"),
        ('[{"name": "a"}]', """X='[{"name": "a"}]'"""),
        ("a#b", "X='a#b'"),
    ],
)
def test_values_are_quoted_only_when_needed(value: str, line: str) -> None:
    assert dotenv_text({"X": value}).splitlines() == [MARKER, line]


def test_a_value_that_cannot_be_written_is_refused() -> None:
    with pytest.raises(ValueError, match="X: cannot be written"):
        dotenv_text({"X": "it's"})


def test_the_settings_read_back_what_was_written(tmp_path, monkeypatch) -> None:
    path = tmp_path / ".env"
    write_env(path, STACK)
    assert "WANEDIT_ENV_FILE" not in path.read_text()  # read from the process only
    for name in STACK:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANEDIT_ENV_FILE", str(path))
    settings = load_settings()
    assert settings.redis_url == STACK["WANEDIT_REDIS_URL"]
    assert settings.output_uri == STACK["WANEDIT_OUTPUT_URI"]
    assert settings.aws_endpoint_url_s3 == STACK["AWS_ENDPOINT_URL_S3"]
    assert settings.aws_region == "us-east-1"
    assert settings.allow_private_urls is True
    assert settings.poll_first_delay == 2.0


def test_only_its_own_file_is_overwritten_or_removed(tmp_path) -> None:
    mine = tmp_path / ".env"
    mine.write_text("WANEDIT_OUTPUT_URI=s3://mine/x/\n")
    with pytest.raises(click.ClickException, match="was not written by `wanedit dev`"):
        check_ours(mine)
    with pytest.raises(click.ClickException):
        write_env(mine, STACK)
    remove_env(mine)
    assert mine.read_text() == "WANEDIT_OUTPUT_URI=s3://mine/x/\n"

    ours = tmp_path / "stack.env"
    write_env(ours, STACK)
    write_env(ours, {**STACK, "WANEDIT_POLL_FIRST_DELAY": "3"})  # its own: overwritten
    assert "WANEDIT_POLL_FIRST_DELAY=3" in ours.read_text()
    remove_env(ours)
    assert not ours.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no partial file left behind
