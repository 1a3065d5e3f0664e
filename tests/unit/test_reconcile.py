"""Reconciling a create whose answer was lost: tables."""

from __future__ import annotations

import pytest

from wanedit.workers.policy.reconcile import (
    Adopt,
    Recreate,
    Wait,
    decide,
    evidence_from,
    give_up,
    look_wait,
    tries_after,
    wait_before_recreate,
    window,
)
from wanedit.workers.provider import ListedTask

SENT = 1000.0
NOW = 1010.0


def t(
    task_id: str,
    submitted: float | None,
    status: str = "RUNNING",
    request_id: str | None = None,
    key: str | None = None,
) -> ListedTask:
    return ListedTask(task_id, status, request_id, submitted=submitted, api_key_id=key)


@pytest.mark.parametrize(
    ("listed", "owned", "unsure", "expected"),
    [
        # nothing in the list: the create never made a task
        ([], set(), [], Recreate()),
        # only tasks our jobs own: still nothing of ours
        ([t("a", 1000.1)], {"a"}, [], Recreate()),
        # a task outside the window (long before the send) is not it
        ([t("old", 900.0)], set(), [], Recreate()),
        # one unowned task in the window: the lost one
        ([t("a", 1000.1), t("b", 1000.3)], {"a"}, [], Adopt("b")),
        # a row without a submit time is a candidate too
        ([t("x", None)], set(), [], Adopt("x")),
        # two unowned tasks, one unsure job: a foreign task may be in the window
        ([t("a", 1000.1), t("b", 1000.3)], set(), [], Wait(("a", "b"))),
        # two unsure jobs, two candidates: by rank (this job sent first)
        ([t("b", 1000.5), t("a", 1000.1)], set(), [1000.4], Adopt("a")),
        # one candidate, two unsure jobs: which one made it is not known yet
        ([t("a", 1000.1)], set(), [999.8], Wait(("a",))),
    ],
)
def test_decide(
    listed: list[ListedTask], owned: set[str], unsure: list[float], expected: object
) -> None:
    assert decide(listed, owned, SENT, NOW, skew=5.0, unsure=unsure) == expected


@pytest.mark.parametrize(
    ("listed", "owned", "expected"),
    [
        # the row carrying the error answer's request id is this job's task, whatever else
        ([t("a", 1000.1), t("b", 1000.3, request_id="r1")], set(), Adopt("b")),
        # even outside the time window (the two clocks may disagree by more than the skew)
        ([t("b", 500.0, request_id="r1")], set(), Adopt("b")),
        # no row carries it and none is in the window: that create made no task
        ([t("old", 900.0, request_id="other")], set(), Recreate()),
        # no row carries it: the id may have been a gateway's, so the window decides as usual
        ([t("a", 1000.1, request_id="other")], set(), Adopt("a")),
        ([t("a", 1000.1), t("b", 1000.3)], set(), Wait(("a", "b"))),
        # the row is already some job's: never adopted twice
        ([t("b", 1000.3, request_id="r1")], {"b"}, Wait(("b",))),
    ],
)
def test_decide_by_request_id(listed: list[ListedTask], owned: set[str], expected: object) -> None:
    assert decide(listed, owned, SENT, NOW, skew=5.0, request_id="r1") == expected


def test_rows_another_unsure_job_holds_by_request_id_are_not_candidates() -> None:
    listed = [t("a", 1000.1, request_id="theirs"), t("b", 1000.3, request_id="x")]
    assert decide(listed, set(), SENT, NOW, skew=5.0, claimed={"theirs"}) == Adopt("b")


def test_a_row_set_aside_only_for_its_key_is_never_proof_of_no_task() -> None:
    # our tasks so far were made with k-old; the lost one may be the first made with a new key
    listed = [t("mine", 999.0, key="k-old"), t("new", 1000.1, key="k-new")]
    assert decide(listed, {"mine"}, SENT, NOW, skew=5.0, key_ids={"k-old"}) == Wait(("new",))


def test_rows_of_another_key_are_not_candidates() -> None:
    listed = [t("mine", 999.0, key="k1"), t("a", 1000.1, key="k2"), t("b", 1000.3, key="k1")]
    assert decide(listed, {"mine"}, SENT, NOW, skew=5.0, key_ids={"k1"}) == Adopt("b")
    # without knowing our key, the foreign row is a candidate and the decision waits
    assert decide(listed, {"mine"}, SENT, NOW, skew=5.0) == Wait(("a", "b"))


def test_rank_for_the_later_sender() -> None:
    listed = [t("a", 1000.1), t("b", 1000.5)]
    assert decide(listed, set(), 1000.4, NOW, skew=5.0, unsure=[SENT]) == Adopt("b")


@pytest.mark.parametrize(
    ("empty_looks", "now", "wait"),
    [
        (1, 1010.0, 20.0),  # one empty look is no proof, nor a look before the settle time
        (1, 1100.0, 5.0),
        (2, 1010.0, 20.0),  # two, but before the settle time: wait for it
        (2, 1028.0, 5.0),  # the settle time is near: never sooner than the look delay
        (2, 1030.0, None),  # two empty looks, settled: send it again
        (3, 1100.0, None),
    ],
)
def test_a_lost_create_goes_again_after_two_empty_looks_once_settled(empty_looks, now, wait):
    assert wait_before_recreate(empty_looks, SENT, now, settle=30.0, look_delay=5.0) == wait


@pytest.mark.parametrize(
    ("now", "settle", "expected"),
    [
        # without a settle time the window runs to now, widened by the skew
        (1010.0, None, (995.0, 1015.0)),
        # a look before the settle time has passed: to now
        (1010.0, 20.0, (995.0, 1015.0)),
        # a late look: a task this create made carries a submit time within the settle time,
        # so the tasks others made since then are not candidates
        (1300.0, 20.0, (995.0, 1025.0)),
    ],
)
def test_the_window_ends_at_the_settle_time(
    now: float, settle: float | None, expected: tuple[float, float]
) -> None:
    assert window(SENT, now, 5.0, settle) == expected


def test_a_late_look_does_not_count_tasks_made_after_the_settle_time() -> None:
    later = [t("late", SENT + 100.0)]
    assert decide(later, set(), SENT, SENT + 300.0, 5.0) == Adopt("late")
    assert decide(later, set(), SENT, SENT + 300.0, 5.0, settle=20.0) == Recreate()


@pytest.mark.parametrize(
    ("tries", "now", "expected"),
    [
        (11, SENT + 100.0, False),  # looks left
        (12, SENT + 100.0, True),  # out of looks, settled
        (12, SENT + 10.0, False),  # out of looks, but a peer may still decide it
        (40, SENT + 59.9, False),
        (40, SENT + 60.0, True),
    ],
)
def test_an_undecided_reconcile_gives_up_only_once_settled(
    tries: int, now: float, expected: bool
) -> None:
    assert give_up(tries, 12, SENT, now, 60.0) is expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (SENT + 0.5, 3),  # a peer's create may still be answered: candidates are expected
        (SENT + 59.9, 3),
        (SENT + 60.0, 4),
        (SENT + 300.0, 4),
    ],
)
def test_only_undecided_looks_after_the_settle_time_count_toward_giving_up(
    now: float, expected: int
) -> None:
    assert tries_after(3, SENT, now, settle=60.0) == expected


@pytest.mark.parametrize(
    ("lost_at", "now", "wait"),
    [
        (None, SENT, 60.0),  # a second message for a job whose create just went: wait it out
        (None, SENT + 31.0, 29.0),  # past the client's timeout, still within the settle time
        (None, SENT + 60.0, 0.0),
        (None, SENT + 90.0, 0.0),
        (SENT + 2.0, SENT + 2.0, 0.0),  # its worker saw the answer lost: look at once
    ],
)
def test_never_reconcile_before_a_creates_answer_could_still_arrive(lost_at, now, wait) -> None:
    assert look_wait(SENT, lost_at, now, settle=60.0) == wait


@pytest.mark.parametrize(
    ("unsure", "expected"),
    [
        ((), SENT),  # alone: its own send
        ((SENT - 3.0,), SENT),  # a peer that sent earlier settles first
        ((SENT + 12.0,), SENT + 12.0),  # a later peer in the window: wait for its settle time
        ((SENT + 12.0, SENT + 30.0), SENT + 30.0),
        ((SENT + 64.0,), SENT + 64.0),  # within the window's skew (60 s + 5 s)
        ((SENT + 66.0,), SENT),  # its task cannot be in this window
        ((SENT - 6.0,), SENT),
    ],
)
def test_undecided_looks_count_once_every_unsure_peer_in_the_window_has_settled(
    unsure: tuple[float, ...], expected: float
) -> None:
    assert evidence_from(SENT, unsure, skew=5.0, settle=60.0) == expected


def test_a_create_that_made_nothing_outwaits_a_later_unsure_peer_before_giving_up() -> None:
    """Two unsure creates and one candidate (the later peer's task; this create made nothing):
    undecided until the peer adopts it. Looks before the peer's settle time never count, so this
    job cannot run out of looks first and fail a create it could have sent again."""
    peer = SENT + 15.0
    since = evidence_from(SENT, (peer,), skew=5.0, settle=60.0)
    tries = 0
    now = SENT + 60.0  # this job's own settle time
    while now < peer + 60.0:
        tries = tries_after(tries, since, now, settle=60.0)
        assert not give_up(tries, 12, since, now, 60.0)
        now += 0.5
    assert tries == 0
