"""Option parsing of ``wanedit sandbox`` (serving itself is covered by the integration tests)."""

import click
import pytest

from sandbox.cli import command


def params(args: list[str]) -> dict[str, object]:
    return command.make_context("sandbox", args).params


def test_defaults() -> None:
    values = params([])
    assert command.name == "sandbox"
    assert (values["host"], values["port"]) == ("127.0.0.1", 8900)
    assert values["api_keys"] == ("sk-sandbox",)
    assert values["duration"] == (30.0, 120.0)


def test_keys_from_options_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert params(["--api-key", "k1", "--api-key", "k2"])["api_keys"] == ("k1", "k2")
    monkeypatch.setenv("WANEDIT_SANDBOX_API_KEYS", "sk-a, sk-b")
    assert params([])["api_keys"] == ("sk-a", "sk-b")


@pytest.mark.parametrize(("text", "bounds"), [("0.5:1", (0.5, 1.0)), ("3", (3.0, 3.0))])
def test_duration(text: str, bounds: tuple[float, float]) -> None:
    assert params(["--duration", text])["duration"] == bounds


@pytest.mark.parametrize("text", ["5:1", "a:b", "-1:2"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        params(["--duration", text])
