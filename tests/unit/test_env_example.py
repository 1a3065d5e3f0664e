""".env.example and docs/configuration.md document every setting, and only real ones; the
example file with the right defaults."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.deploy_files import ENV_EXAMPLE, EXTERNAL_ENV, ROOT, setting_names, unknown_env
from wanedit.config.settings import Settings

LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def entries() -> list[tuple[bool, str, str]]:
    """(active, NAME, value) for every `NAME=value` line, commented out (`# NAME=...`) or not."""
    found = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            found.append((not match.group("comment"), match.group("name"), match.group("value")))
    return found


def names() -> list[str]:
    return [name for _, name, _ in entries()]


def test_every_setting_is_documented() -> None:
    missing = sorted(setting_names() - set(names()))
    assert missing == [], f".env.example does not document {missing}"


def test_every_name_is_a_setting_or_boto3s() -> None:
    ours = [name for name in names() if name.startswith(("WANEDIT_", "DASHSCOPE_"))]
    assert sorted(set(ours) - setting_names()) == []
    assert unknown_env(names()) == []


def test_each_name_once() -> None:
    assert [name for name, count in Counter(names()).items() if count > 1] == []


def test_each_setting_has_a_comment_above_it() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        match = LINE.match(line.strip())
        if match and match.group("name") in setting_names():
            above = lines[index - 1].strip()
            assert above.startswith("#"), f"{match.group('name')}: no comment above it"


def test_the_active_lines_are_valid_settings(monkeypatch) -> None:
    for active, name, value in entries():
        if active:
            monkeypatch.setenv(name, value)
    Settings(_env_file=None)  # type: ignore[call-arg]  # raises on any invalid value


FIELDS = {
    str(info.validation_alias.choices[0]): field for field, info in Settings.model_fields.items()
}  # type: ignore[union-attr]


def _default(name: str) -> object:
    return Settings.model_fields[FIELDS[name]].get_default(call_default_factory=True)


# A commented line shows the default; for a setting that is unset by default it is an example.
@pytest.mark.parametrize(
    ("name", "value"),
    [
        (name, value)
        for active, name, value in entries()
        if not active and name in FIELDS and _default(name) is not None
    ],
)
def test_commented_lines_show_the_default(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert getattr(Settings(_env_file=None), FIELDS[name]) == _default(name)  # type: ignore[call-arg]


DOCS = ROOT / "docs"
SETTING_NAME = re.compile(r"\b(?:WANEDIT|DASHSCOPE|AWS)_[A-Z0-9_]*[A-Z0-9]\b")
# Read by wanedit before the settings are, so it has no line in .env.example.
ENV_FILE = "WANEDIT_ENV_FILE"


@pytest.mark.parametrize(
    "page", ["configuration.md", "operations.md", "security.md", "observability.md"]
)
def test_the_docs_name_only_documented_settings(page: str) -> None:
    mentioned = set(SETTING_NAME.findall((DOCS / page).read_text()))
    assert mentioned, f"docs/{page} names no setting"
    assert sorted(mentioned - set(names()) - EXTERNAL_ENV - {ENV_FILE}) == []


def test_the_configuration_page_documents_every_setting() -> None:
    documented = set(SETTING_NAME.findall((DOCS / "configuration.md").read_text()))
    assert sorted(setting_names() - documented) == []
