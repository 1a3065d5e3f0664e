"""docs/usage.md shows the CLI as it is: the exit statuses, the cancel outcomes, the --wait
lines and the idempotency conflict, each checked against the code that makes them."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from wanedit.errors import IdempotencyConflict
from wanedit.producers.cli import main
from wanedit.producers.cli.cancel_outcome import cancel_outcome
from wanedit.producers.cli.exits import EXIT_TABLE
from wanedit.producers.cli.progress import change_line

DOC = (Path(__file__).parents[2] / "docs" / "usage.md").read_text()


def block(name: str) -> str:
    found = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", DOC, re.S)
    assert found, f"docs/usage.md lost its {name} block"
    return found.group(1)


def rows(name: str) -> list[list[str]]:
    lines = [line for line in block(name).splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]


def test_the_exit_table_is_the_clis():
    documented = {int(code): meaning for code, meaning in rows("exit-statuses")}
    assert sorted(documented) == [code for code, _ in EXIT_TABLE]
    for code, meaning in EXIT_TABLE:
        words = re.sub(r"[`;]", "", documented[code])
        assert all(word in words for word in re.findall(r"\w+", meaning.split(":")[0])), code
    help_text = CliRunner().invoke(main, ["--help"]).output
    for code, meaning in EXIT_TABLE:
        assert f"{code}  {meaning}" in help_text
    assert "7  cancel too late" in CliRunner().invoke(main, ["cancel", "--help"]).output
    assert "6  not ended yet" in CliRunner().invoke(main, ["status", "--help"]).output


def job(status, **fields):
    return {"id": "J", "status": status, "provider_task_id": None, "cancel_refused": None, **fields}


CASES = [
    (job("queued"), job("canceled")),
    (job("submitted"), job("canceled", provider_task_id="t")),
    (job("running"), job("running")),
    (job("running"), job("succeeded")),
    (job("queued"), job("queued", cancel_requested=True)),
    (job("submitted"), job("submitted", cancel_requested=True)),
    (job("succeeded"), job("succeeded")),
]


def test_each_documented_cancel_outcome_is_what_cancel_prints():
    documented = rows("cancel-outcomes")
    assert len(documented) == len(CASES)
    for (line, code, _when), (before, after) in zip(documented, CASES, strict=True):
        outcome = cancel_outcome(before, after)
        shown = line.strip("`")
        if shown.endswith("..."):
            assert outcome.line.startswith(shown.removesuffix("..."))
        else:
            assert outcome.line == shown
        assert outcome.code == int(code)


def test_the_wait_example_is_what_wait_prints():
    lines = block("wait-output").strip().strip("`").strip().splitlines()[1:]
    assert lines[0].startswith("job ")
    previous = None
    for line in lines[1:]:
        match = re.fullmatch(r"\[ *(\d+\.\d) s\] (?:\w+ -> )?(\w+)", line)
        assert match, line
        assert change_line(previous, match[2], float(match[1])) == line
        previous = match[2]


def test_the_documented_conflict_is_the_error_the_cli_prints():
    shown = re.search(r"wanedit: invalid request: idempotency_key .*", DOC)
    assert shown
    error = IdempotencyConflict("order-A-17-edit", "5f0c6d0a8f3e4d8c9b1a2e3f4a5b6c7d")
    assert shown.group(0) == f"wanedit: invalid request: {error.problems[0]}"
