"""The CLI's verdicts as tables: a job's exit status, a cancel's outcome, --wait's lines."""

from __future__ import annotations

import pytest

from wanedit.producers.cli.cancel_outcome import TOO_LATE, cancel_outcome, settled
from wanedit.producers.cli.exits import EXIT_TABLE, status_exit
from wanedit.producers.cli.progress import change_line, new_changes


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("succeeded", 0),
        ("failed", 1),
        ("canceled", 5),
        ("queued", 6),
        ("submitted", 6),
        ("running", 6),
    ],
)
def test_a_job_exits_by_how_it_stands(status, code):
    assert status_exit(status) == code


def test_the_exit_table_keeps_2_and_3_and_gives_each_code_one_meaning():
    codes = [code for code, _ in EXIT_TABLE]
    assert codes == list(range(9))
    meanings = dict(EXIT_TABLE)
    assert meanings[2].startswith("invalid request")
    assert meanings[3] == "Redis or S3 cannot be reached"


def job(status, **fields):
    return {
        "id": "j1",
        "status": status,
        "provider_task_id": None,
        "cancel_refused": None,
        **fields,
    }


@pytest.mark.parametrize(
    ("before", "after", "name", "line", "code"),
    [
        (
            job("queued"),
            job("canceled"),
            "canceled",
            "canceled before it was sent; nothing is billed",
            0,
        ),
        (
            job("submitted", provider_task_id="t"),
            job("canceled", provider_task_id="t"),
            "canceled",
            "canceled at the provider; nothing is billed",
            0,
        ),
        (job("running"), job("running", cancel_requested=True), "too_late", TOO_LATE, 7),
        (job("submitted"), job("submitted", cancel_refused="late"), "too_late", TOO_LATE, 7),
        (job("running"), job("succeeded", cancel_refused="late"), "too_late", TOO_LATE, 7),
        (
            job("running"),
            job("failed"),
            "too_late",
            "too late: the job ended failed before the cancel reached the provider",
            7,
        ),
        (
            job("succeeded"),
            job("succeeded"),
            "already_ended",
            "already succeeded: the job had ended; nothing changed",
            8,
        ),
        (
            job("failed"),
            job("failed"),
            "already_ended",
            "already failed: the job had ended; nothing changed",
            8,
        ),
        (
            job("canceled"),
            job("canceled"),
            "already_ended",
            "already canceled: the job had ended; nothing changed",
            8,
        ),
        (
            job("queued"),
            job("queued", cancel_requested=True),
            "requested",
            "cancel requested: a create is in flight; once the provider answers, its task is "
            "canceled if it has not started (see `wanedit status j1`)",
            6,
        ),
        (
            job("submitted"),
            job("submitted", cancel_requested=True),
            "requested",
            "cancel requested: the provider has not answered yet; the task is canceled if it has "
            "not started (see `wanedit status j1`)",
            6,
        ),
    ],
)
def test_each_cancel_outcome_has_its_line_and_exit_status(before, after, name, line, code):
    outcome = cancel_outcome(before, after)
    assert (outcome.name, outcome.line, outcome.code) == (name, line, code)


@pytest.mark.parametrize(
    ("after", "known"),
    [
        (job("queued", cancel_requested=True), False),
        (job("submitted", cancel_requested=True), False),
        (job("running"), True),
        (job("submitted", cancel_refused="late"), True),
        (job("canceled"), True),
    ],
)
def test_the_cli_waits_until_the_outcome_is_known(after, known):
    assert settled(after) is known


T = "2026-12-03T02:00:0{}.000+00:00"


@pytest.mark.parametrize(
    ("timestamps", "shown", "changes"),
    [
        ({"queued": T.format(0)}, [], [("queued", 0.0)]),
        ({"queued": T.format(0), "submitted": T.format(2)}, ["queued"], [("submitted", 2.0)]),
        # A status passed between two looks is shown too, in the order it was entered.
        (
            {"running": T.format(3), "queued": T.format(0), "submitted": T.format(2),
             "succeeded": T.format(7)},
            ["queued"],
            [("submitted", 2.0), ("running", 3.0), ("succeeded", 7.0)],
        ),
        ({"queued": T.format(0), "canceled": T.format(1)}, ["queued", "canceled"], []),
    ],
)  # fmt: skip
def test_wait_shows_each_status_entered_once(timestamps, shown, changes):
    assert new_changes(timestamps, shown) == changes


def test_a_change_line_names_both_statuses_and_the_seconds():
    assert change_line(None, "queued", 0.0) == "[   0.0 s] queued"
    assert change_line("submitted", "running", 12.25) == "[  12.2 s] submitted -> running"
