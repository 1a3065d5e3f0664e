"""WANEDIT_RULES_FILE: listen rules as TOML `[[rule]]` tables, the same rules as
WANEDIT_LISTEN_RULES, with errors that name the file, the rule and the field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wanedit.config.listen import ListenRule
from wanedit.config.settings import load_settings
from wanedit.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "storage-events.md"

RULE = """
[[rule]]
bucket = "photos"
suffix = ".png"
prompt = "Put a small party hat on the main subject"
output = "s3://photos/edited/"
"""


def documented_toml() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/storage-events.md shows one TOML rules file"
    return blocks[0]


@pytest.fixture
def rules_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WANEDIT_ENV_FILE", "")
    monkeypatch.delenv("WANEDIT_LISTEN_RULES", raising=False)

    def write(text: str) -> Path:
        path = tmp_path / "rules.toml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("WANEDIT_RULES_FILE", str(path))
        return path

    return write


def test_the_documented_file_loads_as_listen_rules(rules_file) -> None:
    rules_file(documented_toml())
    rules = load_settings().listen_rules
    assert [(rule.bucket, rule.prefix, rule.suffix, rule.output) for rule in rules] == [
        ("photos", "", ".png", "s3://photos/edited/"),
        ("photos", "products/", ".jpg", "s3://photos/edited-products/"),
    ]
    assert rules[1].template["n"] == 2
    assert rules[1].template["metadata"] == {"source": "catalogue"}
    assert rules[1].matches("photos", "products/a.jpg")
    assert not rules[1].matches("photos", "a.jpg")


def test_a_file_rule_equals_the_same_json_rule(rules_file, monkeypatch) -> None:
    rules_file(RULE)
    from_file = load_settings().listen_rules
    monkeypatch.delenv("WANEDIT_RULES_FILE")
    monkeypatch.setenv(
        "WANEDIT_LISTEN_RULES",
        json.dumps(
            [
                {
                    "bucket": "photos",
                    "suffix": ".png",
                    "prompt": "Put a small party hat on the main subject",
                    "output": "s3://photos/edited/",
                }
            ]
        ),
    )
    assert load_settings().listen_rules == from_file


def test_both_settings_give_the_union(rules_file, monkeypatch) -> None:
    rules_file(RULE)
    other = {"bucket": "scans", "prompt": "Straighten the page", "output": "s3://scans/out/"}
    monkeypatch.setenv("WANEDIT_LISTEN_RULES", json.dumps([other]))
    rules = load_settings().listen_rules
    assert [rule.bucket for rule in rules] == ["scans", "photos"]
    assert rules[0] == ListenRule.model_validate(other)


def test_a_rule_given_twice_is_refused(rules_file, monkeypatch) -> None:
    path = rules_file(RULE)
    same = {
        "bucket": "photos",
        "suffix": ".png",
        "prompt": "Put a small party hat on the main subject",
        "output": "s3://photos/edited/",
    }
    monkeypatch.setenv("WANEDIT_LISTEN_RULES", json.dumps([same]))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        f"WANEDIT_RULES_FILE {path}: rule[0]: the same rule as WANEDIT_LISTEN_RULES[0]; "
        "give each rule once"
    )
    monkeypatch.delenv("WANEDIT_LISTEN_RULES")
    rules_file(RULE + RULE)
    with pytest.raises(
        ConfigError, match=r"rule\[1\]: the same rule as WANEDIT_RULES_FILE rule\[0\]"
    ):
        load_settings()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            RULE
            + '\n[[rule]]\nbucket = "photos"\nprefix = 3\nprompt = "p"\noutput = "s3://photos/o/"\n',
            r"rule\[1\]\.prefix: Input should be a valid string",
        ),
        (
            '[[rule]]\nbucket = "photos"\nprompt = ""\noutput = "s3://photos/o/"\n',
            r"rule\[0\]: prompt: must not be empty",
        ),
        ('[[rule]]\nbucket = "photos"\nprompt = "p"\n', r"rule\[0\]\.output: Field required"),
        (
            '[[rule]]\nbucket = "photos"\nprompt = "p"\noutput = "s3://photos/o/"\n'
            'idempotency_key = "k"\n',
            r"rule\[0\]: idempotency_key: is set by the listener",
        ),
        (
            '[[rule]]\nbucket = "photos"\nprompt = "p"\noutput = "s3://photos/o/"\nn = 9\n',
            r"rule\[0\]: n: ",
        ),
        ("[[rule]\nbucket = 1", r": not valid TOML \(.*line 1"),
        (
            'bucket = "photos"\n',
            r": bucket: is not a rule; the file holds only \[\[rule\]\] tables",
        ),
        ('rule = "photos"\n', r": rule: must be \[\[rule\]\] tables"),
    ],
)
def test_a_bad_file_is_one_start_up_error_naming_the_file_and_rule(rules_file, text, problem):
    path = rules_file(text)
    with pytest.raises(ConfigError, match=re.escape(f"WANEDIT_RULES_FILE {path}") + ".*" + problem):
        load_settings()


def test_a_missing_file_is_a_start_up_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WANEDIT_ENV_FILE", "")
    monkeypatch.setenv("WANEDIT_RULES_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=r"absent\.toml: cannot be read \(No such file"):
        load_settings()


def test_the_cli_says_so_without_a_traceback(monkeypatch, tmp_path) -> None:
    from click.testing import CliRunner

    from wanedit.producers.cli import main

    monkeypatch.setenv("WANEDIT_ENV_FILE", "")
    monkeypatch.setenv("WANEDIT_RULES_FILE", str(tmp_path / "absent.toml"))
    result = CliRunner().invoke(main, ["listen", "--http", "127.0.0.1:0"])
    assert result.exit_code == 2, result.output
    assert "WANEDIT_RULES_FILE" in result.output and "Traceback" not in result.output
