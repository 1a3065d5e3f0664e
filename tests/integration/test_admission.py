"""Admission control on a real Redis, with a controlled clock: slots, leases, spacing,
priorities, the cap, accounts."""

from __future__ import annotations

import uuid

import pytest
import redis

from wanedit.accounts import Account
from wanedit.states import Status
from wanedit.store.admission import QUERY_HEADROOM, Admission
from wanedit.store.jobs import JobStore

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0  # 2026-09-21, mid-day UTC

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def prefix(client):
    value = f"adm-{uuid.uuid4().hex[:8]}"
    yield value
    for key in client.scan_iter(f"{value}*"):
        client.delete(key)


def make(client, prefix, clock, *accounts: Account, lease=60.0, batch_max_wait=600.0, cap=0):
    store = JobStore(
        client, key_prefix=prefix, events_stream=f"{prefix}:events", events_maxlen=100,
        ttl_seconds=3600, clock=clock,
    )  # fmt: skip
    admission = Admission(
        client,
        key_prefix=prefix,
        accounts=accounts or (Account(name="a1"),),
        lease_seconds=lease,
        batch_max_wait=batch_max_wait,
        daily_image_cap=cap,
        clock=clock,
    )
    return store, admission


def enqueue(store, admission, priority="interactive", n=1) -> str:
    job_id = uuid.uuid4().hex
    store.create(
        job_id,
        {"prompt": "p", "images": [], "n": n, "priority": priority},
        "s3://b/p/",
        backlog=admission.keys.backlog(priority),
    )
    store.clock.advance(0.01)  # distinct arrival times
    return job_id


def test_at_most_c_in_flight_and_a_release_lets_the_next_in(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=5, submit_rate=1000)
    )
    jobs = [enqueue(store, admission) for _ in range(8)]

    first = admission.admit()
    assert [item.job_id for item in first.admitted] == jobs[:5]
    assert first.blocked_by == "slots"
    assert first.waiting == 3
    assert admission.admit().admitted == []
    assert admission.in_flight("a1") == 5

    assert admission.release(jobs[0], "a1", billed=1)
    assert not admission.release(jobs[0], "a1", billed=1)  # a second release changes nothing
    assert [item.job_id for item in admission.admit().admitted] == [jobs[5]]
    assert store.get(jobs[5]).account == "a1"


def test_submissions_are_spaced_not_burst(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=50, submit_rate=5)
    )
    for _ in range(10):
        enqueue(store, admission)
    result = admission.admit()
    delays = [item.delay for item in result.admitted]
    # No burst: one every 1/R = 0.2 s, scheduled ahead up to a 1 s horizon.
    assert delays == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0][: len(delays)], abs=0.02)
    assert len(delays) >= 5
    assert result.blocked_by == "rate"


def test_interactive_goes_before_a_waiting_batch(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=1, submit_rate=1000)
    )
    [enqueue(store, admission, "batch") for _ in range(3)]
    person = enqueue(store, admission, "interactive")
    assert [item.job_id for item in admission.admit().admitted] == [person]


def test_batch_that_waited_too_long_goes_first(client, prefix, clock):
    store, admission = make(
        client,
        prefix,
        clock,
        Account(name="a1", concurrency=1, submit_rate=1000),
        batch_max_wait=0.05,
    )
    old = enqueue(store, admission, "batch")
    clock.advance(0.1)
    enqueue(store, admission, "interactive")
    assert [item.job_id for item in admission.admit().admitted] == [old]


def test_lapsed_lease_is_reclaimed_and_an_unsent_job_requeued(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=1, submit_rate=1000), lease=0.1
    )
    unsent = enqueue(store, admission)
    assert [item.job_id for item in admission.admit().admitted] == [unsent]
    assert admission.claim(unsent, "a1")
    clock.advance(0.15)  # its worker died before submitting

    again = admission.admit()
    assert again.reclaimed == 1
    assert [item.job_id for item in again.admitted] == [unsent]

    sent = enqueue(store, admission)
    clock.advance(0.15)
    store.transition(store.get(unsent), Status.SUBMITTED, {"provider_task_id": "t"})
    later = admission.admit()
    assert later.reclaimed == 1  # the submitted job's slot is freed, the job is not requeued
    assert [item.job_id for item in later.admitted] == [sent]
    assert not admission.claim(unsent, "a1")


def test_a_submit_message_from_an_earlier_admission_cannot_claim_the_slot(client, prefix, clock):
    """A message that waited past its slot's lease carries the token of an admission that is
    over: after the job is admitted again only the new admission's message may create."""
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=1, submit_rate=1000), lease=0.1
    )
    job_id = enqueue(store, admission)
    [first] = admission.admit().admitted
    clock.advance(0.15)  # its message still waits in the queue
    [second] = admission.admit().admitted
    assert (first.job_id, second.job_id) == (job_id, job_id)
    assert first.token != second.token
    assert store.get(job_id).admit_token == second.token

    assert not admission.claim(job_id, "a1", first.token)
    assert admission.claim(job_id, "a1", second.token)


def test_a_reclaimed_lease_gives_its_reservation_back(client, prefix, clock):
    """Admitted, reclaimed, admitted again, billed 2: the day's spend is 2, not 4."""
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=1, submit_rate=1000), lease=0.1
    )
    job_id = enqueue(store, admission, n=2)
    admission.admit()
    assert admission.spent_today() == {"total": 2, "a1": 2}
    clock.advance(0.15)
    again = admission.admit()
    assert (again.reclaimed, [item.job_id for item in again.admitted]) == (1, [job_id])
    assert admission.spent_today() == {"total": 2, "a1": 2}
    assert admission.release(job_id, "a1", billed=2)
    assert admission.spent_today() == {"total": 2, "a1": 2}


def test_a_job_back_in_the_backlog_holds_no_reservation(client, prefix, clock):
    """Reclaimed and not admitted again (yet): it counts nothing today, so a cancel while it
    waits leaves the day's spend at 0."""
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=1, submit_rate=1000), lease=0.1
    )
    job_id = enqueue(store, admission, n=2)
    admission.admit()
    clock.advance(0.15)
    assert admission.admit(max_admits=0).reclaimed == 1
    assert admission.spent_today() == {"total": 0, "a1": 0}
    job = store.get(job_id)
    assert (job.account, job.reserved, job.spend_day) == (None, None, None)


def test_canceled_jobs_leave_the_backlog(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=5, submit_rate=1000)
    )
    gone = enqueue(store, admission)
    kept = enqueue(store, admission)
    store.transition(store.get(gone), Status.CANCELED, {"error": {"code": "C", "message": "m"}})
    assert [item.job_id for item in admission.admit().admitted] == [kept]
    assert admission.waiting() == {"interactive": 0, "batch": 0}


def test_daily_cap_pauses_admission_until_raised(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=5, submit_rate=1000), cap=3
    )
    first = enqueue(store, admission, n=2)
    second = enqueue(store, admission, n=2)

    result = admission.admit()
    assert [item.job_id for item in result.admitted] == [first]
    assert result.blocked_by == "cap"
    assert admission.paused() == 3
    assert admission.spent_today() == {"total": 2, "a1": 2}

    admission.set_cap(10)
    assert [item.job_id for item in admission.admit().admitted] == [second]
    assert admission.paused() is None


def test_release_corrects_reserved_images_to_billed(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=5, submit_rate=1000)
    )
    job = enqueue(store, admission, n=4)
    admission.admit()
    assert admission.spent_today()["total"] == 4
    admission.release(job, "a1", billed=1)  # a partial failure: one image billed
    assert admission.spent_today() == {"total": 1, "a1": 1}


def test_slot_freed_before_the_count_is_known_is_settled_later(client, prefix, clock):
    """The list watch frees a slot as soon as the task ends; the billed count comes with the
    result query after it, and corrects the spend exactly once."""
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=1, submit_rate=1000)
    )
    job = enqueue(store, admission, n=4)
    waiting = enqueue(store, admission, n=1)
    assert [item.job_id for item in admission.admit().admitted] == [job]
    assert admission.release(job, "a1", billed=None)  # the slot is free, the count unknown
    assert admission.spent_today()["total"] == 4  # still reserved
    assert [item.job_id for item in admission.admit().admitted] == [waiting]
    assert not admission.release(job, "a1", billed=2)  # the slot was already given back...
    assert admission.spent_today() == {"total": 3, "a1": 3}  # ...but the spend is corrected
    assert not admission.release(job, "a1", billed=2)
    assert admission.spent_today() == {"total": 3, "a1": 3}  # once
    assert admission.in_flight_jobs("a1") == [waiting]


def test_jobs_spread_over_accounts_with_free_slots(client, prefix, clock):
    store, admission = make(
        client,
        prefix,
        clock,
        Account(name="sg", concurrency=2, submit_rate=1000),
        Account(name="bj", concurrency=2, submit_rate=1000),
    )
    [enqueue(store, admission) for _ in range(5)]
    result = admission.admit()
    assert sorted(item.account for item in result.admitted) == ["bj", "bj", "sg", "sg"]
    assert result.waiting == 1


def test_queries_are_reserved_at_the_query_rate(client, prefix, clock):
    account = Account(name="a1", query_rate=20)
    _, admission = make(client, prefix, clock, account)
    waits = [admission.reserve_query(account) for _ in range(5)]
    # Two may go back to back, then one every 1/Q s with the headroom: under Q per second.
    step = 0.05 * (1 + QUERY_HEADROOM)
    assert waits == pytest.approx([0.0, 0.0, step, 2 * step, 3 * step], abs=0.002)


def test_a_429_doubles_the_spacing_for_a_while(client, prefix, clock):
    account = Account(name="a1", query_rate=20)
    _, admission = make(client, prefix, clock, account)
    assert admission.pushed_back("a1", "query") == 2
    assert admission.pushed_back("a1", "query") == 4
    admission.reserve_query(account)
    # 4 x 0.05 s, with the headroom
    assert admission.reserve_query(account) == pytest.approx(0.2 * (1 + QUERY_HEADROOM), abs=0.002)
    for _ in range(5):
        admission.pushed_back("a1", "query")
    assert admission.pushed_back("a1", "query") == 8  # capped


def test_a_new_day_resumes_admission(client, prefix, clock):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=5, submit_rate=1000), cap=1
    )
    first = enqueue(store, admission)
    later = enqueue(store, admission)
    assert len(admission.admit().admitted) == 1
    assert admission.admit().blocked_by == "cap"
    admission.release(first, "a1", billed=1)
    clock.advance(86400)
    assert [item.job_id for item in admission.admit().admitted] == [later]
    assert admission.spent_today() == {"total": 1, "a1": 1}


@pytest.mark.parametrize(
    ("rate", "elapsed", "expected"),
    [
        (5, 0.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (5, 0.5, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),  # idle time builds no burst credit
        (2, 0.0, [0.0, 0.5, 1.0]),
        (1, 0.0, [0.0, 1.0]),
    ],
)
def test_submission_schedule_table(client, prefix, clock, rate, elapsed, expected):
    store, admission = make(
        client, prefix, clock, Account(name="a1", concurrency=50, submit_rate=rate)
    )
    for _ in range(10):
        enqueue(store, admission)
    clock.advance(elapsed)
    delays = [item.delay for item in admission.admit().admitted]
    assert delays == pytest.approx(expected, abs=0.001)


def test_wake_ups_are_booked_earliest_first(client, prefix, clock):
    _, admission = make(client, prefix, clock)
    assert admission.book("watch:a1", 2.0)
    assert not admission.book("watch:a1", 3.0)  # a later one is not needed
    assert admission.book("watch:a1", 0.5)  # a sooner one is
    assert not admission.book("watch:a1", 0.5)
    admission.woke("watch:a1")  # the 0.5 s one has not come yet: it stays booked
    assert not admission.book("watch:a1", 1.0)
