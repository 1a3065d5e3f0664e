"""The lazy FIFO scheduling simulation, advanced with explicit times."""

from wanedit.sandbox.faults import ALGO_FAILURE, Outcome
from wanedit.sandbox.params import EditRequest
from wanedit.sandbox.tasks import CANCELED, FAILED, PENDING, RUNNING, SUCCEEDED, Task, TaskStore

REQUEST = EditRequest(model="wan2.5-i2i-preview", prompt="p", images=("x",), n=1)


def make(task_id: str, submit_at: float, duration: float, account: str = "a", **kw: object) -> Task:
    return Task(
        task_id=task_id,
        account=account,
        submit_at=submit_at,
        duration=duration,
        request=REQUEST,
        size=(1024, 1024),
        seed=1,
        **kw,  # type: ignore[arg-type]
    )


def statuses(store: TaskStore, now: float, account: str = "a") -> list[str]:
    store.advance(now)
    return [t.status(now) for t in reversed(store.of_account(account, now))]


def test_seven_tasks_with_five_slots_queue_in_fifo_order() -> None:
    store = TaskStore(concurrency=5, ttl=1000)
    durations = [10, 20, 30, 40, 50, 5, 5]
    for i, duration in enumerate(durations):
        store.add(make(f"t{i}", submit_at=i * 0.1, duration=duration))

    assert statuses(store, 1.0) == [RUNNING] * 5 + [PENDING] * 2
    # t0 ends at 10: t5 takes its slot at that instant; t5 ends at 15: t6 takes it.
    assert statuses(store, 10.0) == [SUCCEEDED] + [RUNNING] * 5 + [PENDING]
    tasks = {t.task_id: t for t in store}
    assert tasks["t5"].start_at == tasks["t0"].end_at == 10.0
    assert statuses(store, 15.0)[5] == SUCCEEDED
    assert tasks["t6"].start_at == tasks["t5"].end_at == 15.0
    assert store.max_running() == {"a": 5}


def test_start_times_do_not_depend_on_how_often_time_is_observed() -> None:
    def schedule(observations: list[float]) -> list[float | None]:
        store = TaskStore(concurrency=2, ttl=1000)
        for i in range(6):
            store.add(make(f"t{i}", submit_at=float(i), duration=7.0 + i))
        for now in observations:
            store.advance(now)
        return [t.start_at for t in store]

    assert schedule([100.0]) == schedule([float(t) for t in range(6, 101)])
    assert schedule([100.0]) == [0.0, 1.0, 7.0, 9.0, 16.0, 19.0]


def test_a_task_submitted_after_slots_freed_starts_at_its_submit_time() -> None:
    store = TaskStore(concurrency=1, ttl=1000)
    store.add(make("t0", submit_at=0.0, duration=1.0))
    store.add(make("t1", submit_at=5.0, duration=1.0))
    assert [t.start_at for t in store] == [0.0, 5.0]
    assert store.max_running() == {"a": 1}


def test_accounts_have_separate_slots() -> None:
    store = TaskStore(concurrency=1, ttl=1000)
    store.add(make("a0", 0.0, 10.0, account="a"))
    store.add(make("b0", 0.0, 10.0, account="b"))
    assert statuses(store, 1.0, "a") == [RUNNING]
    assert statuses(store, 1.0, "b") == [RUNNING]


def test_cancel_only_pending_and_the_queue_closes_up() -> None:
    store = TaskStore(concurrency=1, ttl=1000)
    for i in range(3):
        store.add(make(f"t{i}", submit_at=0.0, duration=10.0))
    assert not store.cancel("t0", "a", 1.0)  # RUNNING
    assert not store.cancel("t1", "b", 1.0)  # another account's task
    assert store.cancel("t1", "a", 1.0)
    assert not store.cancel("t1", "a", 1.0)  # already CANCELED
    store.advance(10.0)
    tasks = {t.task_id: t for t in store}
    assert tasks["t1"].status(10.0) == CANCELED
    assert tasks["t2"].start_at == 10.0


def test_failed_outcome_shows_once_the_task_ends() -> None:
    store = TaskStore(concurrency=1, ttl=1000)
    task = make("t0", 0.0, 5.0, outcome=Outcome(failure=ALGO_FAILURE))
    store.add(task)
    assert task.status(4.9) == RUNNING
    assert task.status(5.0) == FAILED


def test_tasks_disappear_after_the_ttl_or_when_expired_by_trigger() -> None:
    store = TaskStore(concurrency=5, ttl=100)
    store.add(make("old", 0.0, 1.0))
    store.add(make("gone", 0.0, 1.0, outcome=Outcome(expired=True)))
    assert store.get("old", "a", 50.0) is not None
    assert store.get("gone", "a", 0.0) is None
    assert store.get("old", "a", 100.5) is None
    assert store.get("old", "b", 50.0) is None
    store.advance(102.0)
    assert store.find("old") is None
    assert store.counts(102.0) == dict.fromkeys((PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED), 0)
