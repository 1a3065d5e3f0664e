"""Main accounts: several keys share one quota and one task list; config checks."""

from typing import Any

import pytest

from tests.unit.test_sandbox_service import FakeClock, create, make, query, rows
from wanedit.sandbox.accounts import Accounts, api_key_id, uid
from wanedit.sandbox.errors import ApiError
from wanedit.sandbox.settings import SandboxConfig

GROUPED = {"api_keys": ("sk-c",), "main_accounts": (("sk-a", "sk-b"),)}


def test_grouped_keys_authenticate_and_others_do_not() -> None:
    sandbox = make(FakeClock(), **GROUPED)
    for key in ("sk-a", "sk-b", "sk-c"):
        assert sandbox.authenticate(f"Bearer {key}") == key
    for header in ("Bearer sk-d", "Bearer ", "sk-a", None):
        with pytest.raises(ApiError) as caught:
            sandbox.authenticate(header)
        assert (caught.value.status, caught.value.code) == (401, "InvalidApiKey")


def test_keys_of_one_main_account_see_and_cancel_each_others_tasks() -> None:
    sandbox = make(FakeClock(), concurrency=1, **GROUPED)
    running = create(sandbox, key="sk-a")
    pending = create(sandbox, key="sk-b")
    other = create(sandbox, key="sk-c")
    assert query(sandbox, running, key="sk-b")["output"]["task_status"] == "RUNNING"
    assert query(sandbox, running, key="sk-c")["output"]["task_status"] == "UNKNOWN"
    assert query(sandbox, other, key="sk-a")["output"]["task_status"] == "UNKNOWN"
    with pytest.raises(ApiError):
        sandbox.cancel("sk-c", pending)  # another main account's task
    assert sandbox.cancel("sk-a", pending) == {}
    assert query(sandbox, pending, key="sk-b")["output"]["task_status"] == "CANCELED"
    for key in ("sk-a", "sk-b"):
        assert [r["task_id"] for r in rows(sandbox, key)] == [pending, running]
    assert [r["task_id"] for r in rows(sandbox, "sk-c")] == [other]


def test_list_rows_name_the_key_without_showing_it() -> None:
    sandbox = make(FakeClock(), **GROUPED)
    by_a = create(sandbox, key="sk-a")
    by_b = create(sandbox, key="sk-b")
    by_c = create(sandbox, key="sk-c")
    listed = {r["task_id"]: r for r in rows(sandbox, "sk-a") + rows(sandbox, "sk-c")}
    a, b, c = listed[by_a], listed[by_b], listed[by_c]
    assert len({a["api_key_id"], b["api_key_id"], c["api_key_id"]}) == 3
    assert a["api_key_id"] == api_key_id("sk-a") == api_key_id("sk-a")
    assert all("sk-" not in str(value) for row in (a, b, c) for value in row.values())
    assert all(row["api_key_id"].isdigit() for row in (a, b, c))
    # One main account: one parent; its first key is the main account's own.
    assert a["caller_parent_id"] == b["caller_parent_id"] == a["caller_uid"] == uid("sk-a")
    assert b["caller_uid"] not in (a["caller_uid"], c["caller_uid"])
    assert c["caller_parent_id"] == c["caller_uid"] != a["caller_parent_id"]
    assert rows(sandbox, "sk-b", api_key_id=api_key_id("sk-b")) == [b]


def test_keys_of_one_main_account_share_the_submit_quota() -> None:
    sandbox = make(FakeClock(), submit_rate=2.0, **GROUPED)
    create(sandbox, key="sk-a")
    create(sandbox, key="sk-b")
    with pytest.raises(ApiError) as caught:
        create(sandbox, key="sk-a")
    assert caught.value.status == 429
    create(sandbox, key="sk-c")
    create(sandbox, key="sk-c")


def test_keys_of_one_main_account_share_the_query_quota() -> None:
    sandbox = make(FakeClock(), query_rate=2.0, **GROUPED)
    query(sandbox, "x", key="sk-a")
    rows(sandbox, "sk-b")
    for call in (lambda: query(sandbox, "x", key="sk-b"), lambda: sandbox.cancel("sk-a", "x")):
        with pytest.raises(ApiError) as caught:
            call()
        assert caught.value.status == 429
    query(sandbox, "x", key="sk-c")


def test_keys_of_one_main_account_share_the_concurrency_slots() -> None:
    clock = FakeClock()
    sandbox = make(clock, concurrency=2, **GROUPED)
    keys = ("sk-a", "sk-b", "sk-a", "sk-c")
    ids = [create(sandbox, key=k) for k in keys]
    statuses = [
        query(sandbox, i, key=k)["output"]["task_status"] for i, k in zip(ids, keys, strict=True)
    ]
    assert statuses == ["RUNNING", "RUNNING", "PENDING", "RUNNING"]
    clock.now += 10
    assert query(sandbox, ids[2], key="sk-b")["output"]["task_status"] == "RUNNING"
    assert sandbox.stats()["max_running_by_account"] == {"sk-a": 2, "sk-c": 1}


def test_accounts_map_keys_to_main_accounts() -> None:
    accounts = Accounts(("sk-x", "sk-b"), (("sk-a", "sk-b"), ("sk-z",)))
    mains = {key: accounts.main_of(key) for key in ("sk-a", "sk-b", "sk-x", "sk-z", "sk-q")}
    assert mains == {"sk-a": "sk-a", "sk-b": "sk-a", "sk-x": "sk-x", "sk-z": "sk-z", "sk-q": None}
    assert accounts.names() == ["sk-a", "sk-z", "sk-x"]


@pytest.mark.parametrize(
    "changes",
    [
        {"main_accounts": (("sk-a", "sk-b"), ("sk-b",))},
        {"main_accounts": ((),)},
        {"main_accounts": (("sk-a", ""),)},
        {"api_keys": ()},
        {"api_keys": ("",)},
        {"utc_offset_hours": 15.0},
        {"list_order": "oldest"},
        {"lost_answer_modes": ()},
        {"lost_answer_modes": ("504", "timeout")},
        {"lost_answer_rate": 1.5},
    ],
)
def test_bad_configs_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SandboxConfig(**changes)


def test_config_defaults_and_lists() -> None:
    config = SandboxConfig(main_accounts=[["sk-a", "sk-b"]], lost_answer_modes=["late"])  # type: ignore[arg-type]
    assert config.main_accounts == (("sk-a", "sk-b"),)
    assert config.lost_answer_modes == ("late",)
    defaults = SandboxConfig()
    assert (defaults.utc_offset_hours, defaults.list_order) == (8.0, "newest")
    assert defaults.lost_answer_modes == ("504", "drop")
    assert defaults.as_dict()["main_accounts"] == []
