"""The sandbox service without HTTP: a fake clock, a fake image fetcher."""

import io
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from tests.contract.fixtures import LIST_ROW_KEYS
from wanedit.sandbox.errors import ApiError, LostAnswer
from wanedit.sandbox.service import DownloadError, Sandbox
from wanedit.sandbox.settings import SandboxConfig

BASE = "http://sandbox.test"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def make(clock: FakeClock, **config: Any) -> Sandbox:
    settings = {"duration_min": 10.0, "duration_max": 10.0, "seed": 1, **config}
    return Sandbox(SandboxConfig(**settings), clock=clock, fetch=lambda url: jpeg())


def edit(prompt: str = "paint it red", **params: Any) -> bytes:
    body = {
        "model": "wan2.5-i2i-preview",
        "input": {"prompt": prompt, "images": ["http://img.test/a.jpg"]},
        "parameters": {"n": 1, **params},
    }
    return json.dumps(body).encode()


def create(
    sandbox: Sandbox,
    prompt: str = "paint it red",
    key: str = "sk-sandbox",
    request_id: str | None = None,
    **params: Any,
) -> str:
    answer = sandbox.create(key, edit(prompt, **params), "enable", request_id=request_id)
    assert answer == {"output": {"task_status": "PENDING", "task_id": answer["output"]["task_id"]}}
    return str(answer["output"]["task_id"])


def query(sandbox: Sandbox, task_id: str, key: str = "sk-sandbox") -> dict[str, Any]:
    return sandbox.query(key, task_id, BASE)


def rows(sandbox: Sandbox, key: str = "sk-sandbox", **args: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = sandbox.list_tasks(key, {"page_size": "100", **args})["data"]
    return data


def download(sandbox: Sandbox, url: str) -> bytes:
    parts = urlsplit(url)
    _, _, task_id, name = parts.path.split("/")
    args = parse_qs(parts.query)
    return sandbox.download(
        task_id, int(name.split(".")[0]), args["Expires"][0], args["Signature"][0]
    )


def test_task_lifecycle_and_result_image() -> None:
    clock = FakeClock()
    sandbox = make(clock)
    task_id = create(sandbox, size="1280*720", seed=42)
    assert query(sandbox, task_id)["output"]["task_status"] == "RUNNING"
    clock.now += 10
    answer = query(sandbox, task_id)
    output = answer["output"]
    assert output["task_status"] == "SUCCEEDED"
    assert output["task_metrics"] == {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}
    assert answer["usage"] == {"image_count": 1}
    assert output["results"][0]["orig_prompt"] == "paint it red"
    assert output["results"][0]["actual_prompt"].startswith("paint it red, ")
    assert output["submit_time"] == output["scheduled_time"]
    image = Image.open(io.BytesIO(download(sandbox, output["results"][0]["url"])))
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (1280, 720))
    assert sandbox.stats()["downloads"] == 1


def test_default_size_comes_from_the_last_image_and_n_defaults_to_four() -> None:
    clock = FakeClock()
    sandbox = make(clock)
    body = {
        "model": "wan2.5-i2i-preview",
        "input": {"prompt": "p", "images": ["http://img.test/a.jpg"]},
        "parameters": {"prompt_extend": False},
    }
    task_id = sandbox.create("sk-sandbox", json.dumps(body).encode(), "enable")["output"]["task_id"]
    clock.now += 10
    output = query(sandbox, task_id)["output"]
    assert len(output["results"]) == 4
    assert output["results"][0]["actual_prompt"] == "p"
    image = Image.open(io.BytesIO(download(sandbox, output["results"][3]["url"])))
    assert image.size == (1472, 1104)  # 800x600 at about 1280*1280 px


@pytest.mark.parametrize(
    ("trigger", "code"),
    [
        ("[sandbox:partial]", "InternalError.Timeout"),
        ("[sandbox:partial-moderation]", "DataInspectionFailed"),
    ],
)
def test_partly_failed_tasks(trigger: str, code: str) -> None:
    clock = FakeClock()
    sandbox = make(clock)
    partial = create(sandbox, f"p {trigger}", n=3)
    clock.now += 10
    answer = query(sandbox, partial)
    output = answer["output"]
    assert output["task_status"] == "SUCCEEDED"
    assert output["task_metrics"] == {"TOTAL": 3, "SUCCEEDED": 2, "FAILED": 1}
    assert answer["usage"] == {"image_count": 2}
    assert set(output["results"][2]) == {"code", "message"}
    assert output["results"][2]["code"] == code
    assert all("url" in r for r in output["results"][:2])


@pytest.mark.parametrize(
    ("trigger", "code"),
    [("[sandbox:fail]", "InternalError.Algo"), ("[sandbox:output-fail]", "DataInspectionFailed")],
)
def test_failed_tasks_carry_code_message_and_metrics(trigger: str, code: str) -> None:
    clock = FakeClock()
    sandbox = make(clock)
    failed = create(sandbox, f"p {trigger}", n=3)
    clock.now += 10
    answer = query(sandbox, failed)
    assert set(answer) == {"output"}  # no usage
    output = answer["output"]
    assert set(output) == {
        "task_id",
        "task_status",
        "submit_time",
        "scheduled_time",
        "end_time",
        "code",
        "message",
        "task_metrics",
    }
    assert (output["task_status"], output["code"]) == ("FAILED", code)
    assert output["message"]
    assert output["task_metrics"] == {"TOTAL": 3, "SUCCEEDED": 0, "FAILED": 3}


def test_expired_tasks_answer_unknown() -> None:
    sandbox = make(FakeClock())
    expired = create(sandbox, "p [sandbox:expire]")
    assert query(sandbox, expired) == {"output": {"task_id": expired, "task_status": "UNKNOWN"}}


def test_moderation_trigger_refuses_the_create() -> None:
    sandbox = make(FakeClock())
    with pytest.raises(ApiError) as caught:
        create(sandbox, "p [sandbox:moderation]")
    assert (caught.value.status, caught.value.code) == (400, "DataInspectionFailed")
    assert sandbox.stats()["creates"] == 0


def test_submit_rate_and_recovery_after_a_second() -> None:
    clock = FakeClock()
    sandbox = make(clock, submit_rate=2.0)
    create(sandbox)
    create(sandbox)
    with pytest.raises(ApiError) as caught:
        create(sandbox)
    assert (caught.value.status, caught.value.code) == (429, "Throttling.RateQuota")
    clock.now += 0.5
    create(sandbox)
    stats = sandbox.stats()
    assert (stats["creates"], stats["create_requests"], stats["throttled"]) == (3, 4, 1)


def test_queries_of_another_account_see_unknown() -> None:
    sandbox = make(FakeClock(), api_keys=("sk-a", "sk-sandbox"))
    task_id = create(sandbox)
    assert sandbox.query("sk-a", task_id, BASE)["output"]["task_status"] == "UNKNOWN"


def test_cancel_pending_then_refuse() -> None:
    clock = FakeClock()
    sandbox = make(clock, concurrency=1, api_keys=("sk-sandbox", "sk-other"))
    running = create(sandbox)
    done = create(sandbox)  # runs after `running`, ends at +20
    pending = create(sandbox)
    expired = create(sandbox, "p [sandbox:expire]")
    foreign = create(sandbox, key="sk-other")
    # The body is only the request_id, which the HTTP layer adds.
    assert sandbox.cancel("sk-sandbox", pending) == {}
    clock.now += 25
    assert query(sandbox, done)["output"]["task_status"] == "SUCCEEDED"
    assert query(sandbox, running)["output"]["task_status"] == "SUCCEEDED"
    refused = [running, done, pending, expired, foreign, "no-such-task"]
    for task_id in refused:
        with pytest.raises(ApiError) as caught:
            sandbox.cancel("sk-sandbox", task_id)
        assert (caught.value.status, caught.value.code) == (400, "UnsupportedOperation")
        assert caught.value.message == (
            "Failed to cancel the task, please confirm if the task is in PENDING status."
        )
    assert query(sandbox, pending)["output"]["task_status"] == "CANCELED"
    stats = sandbox.stats()
    assert (stats["cancels"], stats["cancel_requests"]) == (1, 1 + len(refused))


def test_a_canceled_task_is_never_billed_and_frees_its_place() -> None:
    clock = FakeClock()
    sandbox = make(clock, concurrency=1)
    first = create(sandbox)
    canceled = create(sandbox)
    last = create(sandbox)
    sandbox.cancel("sk-sandbox", canceled)
    clock.now += 10
    assert query(sandbox, last)["output"]["task_status"] == "RUNNING"
    clock.now += 100
    answer = query(sandbox, canceled)
    assert answer == {
        "output": {
            "task_id": canceled,
            "task_status": "CANCELED",
            "submit_time": query(sandbox, first)["output"]["submit_time"],
        }
    }


def test_cancels_take_from_the_query_bucket() -> None:
    clock = FakeClock()
    sandbox = make(clock, query_rate=3.0, concurrency=1)
    create(sandbox)
    pending = create(sandbox)
    query(sandbox, pending)
    rows(sandbox)
    sandbox.cancel("sk-sandbox", pending)
    for call in (
        lambda: sandbox.cancel("sk-sandbox", pending),
        lambda: query(sandbox, pending),
        lambda: rows(sandbox),
    ):
        with pytest.raises(ApiError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (429, "Throttling.RateQuota")
    clock.now += 0.5
    with pytest.raises(ApiError) as refused:  # a token again, but the task is CANCELED now
        sandbox.cancel("sk-sandbox", pending)
    assert refused.value.code == "UnsupportedOperation"
    stats = sandbox.stats()
    assert (stats["throttled"], stats["cancel_requests"], stats["cancels"]) == (3, 3, 1)


def test_result_urls_expire_after_the_ttl() -> None:
    clock = FakeClock()
    sandbox = make(clock, result_ttl=60.0)
    task_id = create(sandbox)
    clock.now += 10
    url = query(sandbox, task_id)["output"]["results"][0]["url"]
    clock.now += 61
    with pytest.raises(DownloadError) as caught:
        download(sandbox, url)
    assert (caught.value.status, caught.value.code) == (403, "AccessDenied")
    assert query(sandbox, task_id)["output"]["task_status"] == "UNKNOWN"


def test_runtime_config_changes() -> None:
    clock = FakeClock()
    sandbox = make(clock)
    config = sandbox.update_config({"fail_rate": 1.0, "duration_min": 1, "duration_max": 2})
    assert (config["fail_rate"], config["duration_max"]) == (1.0, 2.0)
    task_id = create(sandbox)
    clock.now += 2
    assert query(sandbox, task_id)["output"]["task_status"] == "FAILED"
    for bad in ({"concurrency": 3}, {"fail_rate": 2}, {"duration_min": 5}, {"fail_rate": "x"}):
        with pytest.raises(ApiError):
            sandbox.update_config(bad)


ROW_KEYS = LIST_ROW_KEYS - {"start_time", "end_time"}


def test_list_rows_by_status() -> None:
    clock = FakeClock(1_700_000_000.125)
    sandbox = make(clock, concurrency=1)
    done = create(sandbox, request_id="rid-done")
    running = create(sandbox, request_id="rid-running")
    pending = create(sandbox, request_id="rid-pending")
    canceled = create(sandbox, request_id="rid-canceled")
    expired = create(sandbox, "p [sandbox:expire]", request_id="rid-expired")
    sandbox.cancel("sk-sandbox", canceled)
    clock.now += 15
    by_id = {row["task_id"]: row for row in rows(sandbox)}
    t0 = 1_700_000_000_125
    expected = {
        done: ("SUCCEEDED", "rid-done", {"start_time": t0, "end_time": t0 + 10_000}),
        running: ("RUNNING", "rid-running", {"start_time": t0 + 10_000}),
        pending: ("PENDING", "rid-pending", {}),
        canceled: ("CANCELED", "rid-canceled", {"end_time": t0}),
        expired: ("UNKNOWN", "rid-expired", {}),
    }
    assert set(by_id) == set(expected)
    for task_id, (status, request_id, times) in expected.items():
        row = by_id[task_id]
        assert set(row) == ROW_KEYS | set(times), status
        assert (row["status"], row["request_id"], row["gmt_create"]) == (status, request_id, t0)
        assert {k: row[k] for k in times} == times
        assert all(isinstance(row[k], int) for k in ("gmt_create", *times))
        assert row["model_name"] == "wan2.5-i2i-preview"
        assert row["region"] == "ap-southeast-1"
        assert row["user_api_unique_key"] == (
            "apikey:v1:aigc:image2image:image-synthesis:wan2.5-i2i-preview"
        )
    for status in ("SUCCEEDED", "RUNNING", "PENDING", "CANCELED", "UNKNOWN"):
        assert [r["status"] for r in rows(sandbox, status=status)] == [status]
    # The same instants as the query's Beijing-time strings.
    output = query(sandbox, done)["output"]
    assert output["submit_time"] == "2023-11-15 06:13:20.125"
    assert output["end_time"] == "2023-11-15 06:13:30.125"


def test_list_window_filters_on_the_submit_time_in_beijing_time() -> None:
    # 1_699_999_200 is 2023-11-14 22:00:00 UTC, 2023-11-15 06:00:00 in Beijing.
    clock = FakeClock(1_699_999_200.0)
    sandbox = make(clock)
    first = create(sandbox)
    clock.now += 3600
    second = create(sandbox)
    clock.now += 3600
    third = create(sandbox)
    clock.now += 60
    cases = [
        ({}, [third, second, first]),
        ({"end_time": "20231115070000"}, [second, first]),
        ({"end_time": "20231115065959"}, [first]),
        ({"start_time": "20231115060001"}, [third, second]),
        ({"start_time": "20231115070000", "end_time": "20231115070000"}, [second]),
        ({"start_time": "20231114070000", "end_time": "20231115060000"}, [first]),
        # The same wall-clock figures read as UTC would be 8 hours later: nothing there.
        ({"start_time": "20231115140000"}, []),
    ]
    for args, expected in cases:
        assert [row["task_id"] for row in rows(sandbox, **args)] == expected, args
    with pytest.raises(ApiError) as caught:
        rows(sandbox, start_time="20231114060000", end_time="20231115070000")
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")


def test_list_window_uses_the_configured_offset() -> None:
    clock = FakeClock(1_699_999_200.0)  # 22:00:00 UTC
    sandbox = make(clock, utc_offset_hours=0.0)
    task_id = create(sandbox)
    assert [r["task_id"] for r in rows(sandbox, start_time="20231114220000")] == [task_id]
    assert rows(sandbox, start_time="20231114220001") == []
    assert query(sandbox, task_id)["output"]["submit_time"] == "2023-11-14 22:00:00.000"


def test_list_filters_and_pages() -> None:
    clock = FakeClock()
    sandbox = make(clock, concurrency=2)
    ids = [create(sandbox) for _ in range(5)]
    clock.now += 1
    page = sandbox.list_tasks("sk-sandbox", {"page_size": "2", "page_no": "2"})
    assert [row["task_id"] for row in page["data"]] == ids[::-1][2:4]
    assert (page["total"], page["total_page"], page["page_no"], page["page_size"]) == (5, 3, 2, 2)
    assert [r["task_id"] for r in rows(sandbox, status="RUNNING")] == ids[1::-1]
    assert [r["task_id"] for r in rows(sandbox, status="PENDING")] == ids[:1:-1]
    assert [r["task_id"] for r in rows(sandbox, task_id=ids[3])] == [ids[3]]
    assert rows(sandbox, status="SUCCEEDED") == []
    assert rows(sandbox, model_name="wan2.2-t2i-flash") == []
    assert len(rows(sandbox, model_name="wan2.5-i2i-preview", region="ap-southeast-1")) == 5
    assert sandbox.list_tasks("sk-sandbox", {})["page_size"] == 10
    with pytest.raises(ApiError):
        sandbox.list_tasks("sk-sandbox", {"start_time": "yesterday"})


def test_tasks_past_their_24_hours_are_not_listed() -> None:
    clock = FakeClock()
    sandbox = make(clock)
    create(sandbox)
    # Submitted 2023-11-15 06:13:20 in Beijing.
    clock.now += 86400 - 1
    assert len(rows(sandbox, start_time="20231115060000")) == 1
    clock.now += 2
    assert rows(sandbox, start_time="20231115060000") == []


def test_shuffled_order_is_fixed_and_pages_cover_every_task_once() -> None:
    clock = FakeClock()
    newest = make(clock, seed=3)
    shuffled = make(clock, seed=3, list_order="shuffled")
    for sandbox in (newest, shuffled):
        for _ in range(12):
            create(sandbox)
            clock.now += 1
    newest_ids = [r["task_id"] for r in rows(newest)]
    order = [r["task_id"] for r in rows(shuffled)]
    assert len(set(order)) == 12
    # Submit order, by gmt_create: the shuffled order follows neither it nor its reverse.
    created = [r["gmt_create"] for r in rows(shuffled)]
    assert created not in (sorted(created), sorted(created, reverse=True))
    newest_created = [r["gmt_create"] for r in rows(newest)]
    assert newest_created == sorted(newest_created, reverse=True)
    assert len(newest_ids) == 12
    paged = [
        row["task_id"]
        for page_no in (1, 2, 3)
        for row in shuffled.list_tasks("sk-sandbox", {"page_no": str(page_no), "page_size": "5"})[
            "data"
        ]
    ]
    assert paged == order == [r["task_id"] for r in rows(shuffled)]


def test_lost_answers_make_the_task() -> None:
    clock = FakeClock()
    sandbox = make(clock, lost_answer_delay=0.0)
    for mode in ("504", "drop"):
        with pytest.raises(LostAnswer) as lost:
            create(sandbox, f"p [sandbox:lost-{mode}]", request_id=f"rid-{mode}")
        assert lost.value.mode == mode
    with pytest.raises(ApiError) as caught:
        create(sandbox, "p [sandbox:lost-500]", request_id="rid-500")
    assert (caught.value.status, caught.value.code) == (500, "InternalError")
    create(sandbox, "p [sandbox:lost-late]", request_id="rid-late")
    listed = {row["request_id"]: row["status"] for row in rows(sandbox)}
    assert listed == dict.fromkeys(["rid-late", "rid-500", "rid-drop", "rid-504"], "RUNNING")
    stats = sandbox.stats()
    assert (stats["creates"], stats["lost_answers"], stats["http_errors"]) == (4, 4, 0)
    assert stats["lost_answers_by_mode"] == {"504": 1, "drop": 1, "500": 1, "late": 1}


def test_injected_500s_on_create_make_no_task() -> None:
    sandbox = make(FakeClock(), http_error_rate=1.0)
    with pytest.raises(ApiError) as caught:
        create(sandbox)
    assert caught.value.status == 500
    stats = sandbox.stats()
    assert (stats["creates"], stats["http_errors"], stats["lost_answers"]) == (0, 1, 0)


def test_lost_answer_rate_and_modes_at_start_and_at_runtime() -> None:
    sandbox = make(FakeClock(), lost_answer_rate=1.0, lost_answer_modes=("500",))
    with pytest.raises(ApiError):
        create(sandbox)
    config = sandbox.update_config({"lost_answer_modes": ["drop"]})
    assert config["lost_answer_modes"] == ["drop"]
    with pytest.raises(LostAnswer):
        create(sandbox)
    sandbox.update_config({"lost_answer_modes": "504, drop", "lost_answer_rate": 0})
    assert sandbox.runtime_config()["lost_answer_modes"] == ["504", "drop"]
    create(sandbox)
    for bad in (
        {"lost_answer_modes": []},
        {"lost_answer_modes": ["soon"]},
        {"lost_answer_modes": 5},
    ):
        with pytest.raises(ApiError):
            sandbox.update_config(bad)
    assert sandbox.stats()["creates"] == 3


def test_a_list_delay_hides_new_tasks_from_the_list_for_a_while() -> None:
    clock = FakeClock()
    sandbox = make(clock, list_delay=2.0)
    task_id = create(sandbox)
    clock.now += 1.0
    assert rows(sandbox) == []
    assert query(sandbox, task_id)["output"]["task_status"] != "UNKNOWN"  # it exists
    clock.now += 1.5
    assert [row["task_id"] for row in rows(sandbox)] == [task_id]


def test_a_key_in_arrears_is_refused_until_the_bill_is_paid() -> None:
    sandbox = make(FakeClock(), api_keys=("sk-sandbox", "sk-unpaid"), arrears_keys=["sk-unpaid"])
    with pytest.raises(ApiError) as caught:
        sandbox.authenticate("Bearer sk-unpaid")
    assert (caught.value.status, caught.value.code) == (400, "Arrearage")
    assert sandbox.authenticate("Bearer sk-sandbox") == "sk-sandbox"
    with pytest.raises(ApiError) as unknown:
        sandbox.authenticate("Bearer sk-never-made")
    assert (unknown.value.status, unknown.value.code) == (401, "InvalidApiKey")
    assert sandbox.update_config({"arrears_keys": "sk-sandbox, "})["arrears_keys"] == ["sk-sandbox"]
    assert sandbox.authenticate("Bearer sk-unpaid") == "sk-unpaid"
    with pytest.raises(ApiError) as bad:
        sandbox.update_config({"arrears_keys": 3})
    assert "arrears_keys" in bad.value.message
