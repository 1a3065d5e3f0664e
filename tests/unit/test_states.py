"""Job status transitions: forward only, terminal states are final."""

from __future__ import annotations

import pytest

from wanedit.states import Status, can_move, sources_for

S = Status
ALLOWED = {
    (S.QUEUED, S.SUBMITTED),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.CANCELED),
    (S.SUBMITTED, S.RUNNING),
    (S.SUBMITTED, S.FAILED),
    (S.SUBMITTED, S.CANCELED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELED),
}


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_transition_table(current, target):
    assert can_move(current, target) == ((current, target) in ALLOWED)


def test_terminal_statuses():
    assert {s for s in Status if s.terminal} == {S.SUCCEEDED, S.FAILED, S.CANCELED}


def test_sources_for():
    assert sources_for(S.SUCCEEDED) == {S.RUNNING}
    assert sources_for(S.FAILED) == {S.QUEUED, S.SUBMITTED, S.RUNNING}
    assert sources_for(S.QUEUED) == set()
