"""`wanedit --version` and `-h`: what a user types first."""

from __future__ import annotations

from importlib.metadata import version

from click.testing import CliRunner

from wanedit.producers.cli import main


def test_version_is_the_installed_distributions():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"wanedit, version {version('wanedit')}\n"


def test_short_help_on_the_group_and_a_command():
    for args in (["-h"], ["submit", "-h"]):
        result = CliRunner().invoke(main, args, prog_name="wanedit")
        assert result.exit_code == 0, result.output
        assert result.output.startswith("Usage: wanedit")
