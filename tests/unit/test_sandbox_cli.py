"""Option parsing of ``wanedit sandbox`` (serving itself is covered by the integration tests)."""

import click
import pytest

from wanedit.sandbox.cli import command


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


def test_new_option_defaults() -> None:
    values = params([])
    assert values["main_accounts"] == ()
    assert values["utc_offset"] == 8.0
    assert (values["lost_answer_rate"], values["lost_answer_modes"]) == (0.0, ("504", "drop"))
    assert (values["region"], values["list_order"]) == ("ap-southeast-1", "newest")


def test_main_accounts_lost_answers_and_zone() -> None:
    values = params(
        [
            "--main-account",
            "sk-a, sk-b",
            "--main-account",
            "sk-c",
            "--lost-answer-rate",
            "0.25",
            "--lost-answer-modes",
            "500,late",
            "--utc-offset",
            "0",
            "--list-order",
            "shuffled",
        ]
    )
    assert values["main_accounts"] == (("sk-a", "sk-b"), ("sk-c",))
    assert (values["lost_answer_rate"], values["lost_answer_modes"]) == (0.25, ("500", "late"))
    assert (values["utc_offset"], values["list_order"]) == (0.0, "shuffled")


@pytest.mark.parametrize(
    "args",
    [
        ["--main-account", ","],
        ["--lost-answer-modes", "504,soon"],
        ["--lost-answer-modes", ""],
        ["--lost-answer-rate", "2"],
        ["--utc-offset", "20"],
        ["--list-order", "oldest"],
    ],
)
def test_bad_new_options(args: list[str]) -> None:
    with pytest.raises(click.BadParameter):
        params(args)


def test_event_options() -> None:
    values = params([])
    assert (values["event_url"], values["event_headers"], values["event_delay"]) == (None, {}, 0.0)
    values = params(
        [
            "--event-url",
            "http://127.0.0.1:9/events?token=t",
            "--event-header",
            "Authorization: Bearer t",
            "--event-delay",
            "1.5",
            "--event-jitter",
            "0.5",
            "--event-loss-rate",
            "0.1",
            "--event-dup-rate",
            "0.2",
        ]
    )
    assert values["event_headers"] == {"Authorization": "Bearer t"}
    assert (values["event_delay"], values["event_jitter"]) == (1.5, 0.5)
    assert (values["event_loss_rate"], values["event_dup_rate"]) == (0.1, 0.2)


@pytest.mark.parametrize(
    "args", [["--event-header", "no-colon"], ["--event-loss-rate", "2"], ["--event-delay", "-1"]]
)
def test_bad_event_options(args: list[str]) -> None:
    with pytest.raises(click.BadParameter):
        params(args)
