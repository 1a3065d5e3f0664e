"""The sandbox service without HTTP: a fake clock, a fake image fetcher."""

import io
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from sandbox.errors import ApiError
from sandbox.service import DownloadError, Sandbox
from sandbox.settings import SandboxConfig

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


def create(sandbox: Sandbox, prompt: str = "paint it red", **params: Any) -> str:
    body = {
        "model": "wan2.5-i2i-preview",
        "input": {"prompt": prompt, "images": ["http://img.test/a.jpg"]},
        "parameters": {"n": 1, **params},
    }
    answer = sandbox.create("sk-sandbox", json.dumps(body).encode(), "enable")
    assert answer["output"]["task_status"] == "PENDING"
    return str(answer["output"]["task_id"])


def query(sandbox: Sandbox, task_id: str) -> dict[str, Any]:
    return sandbox.query("sk-sandbox", task_id, BASE)


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


def test_partial_failed_and_expired_triggers() -> None:
    clock = FakeClock()
    sandbox = make(clock)
    partial = create(sandbox, "p [sandbox:partial]", n=3)
    failed = create(sandbox, "p [sandbox:fail]")
    expired = create(sandbox, "p [sandbox:expire]")
    clock.now += 10
    answer = query(sandbox, partial)
    assert answer["output"]["task_status"] == "SUCCEEDED"
    assert answer["usage"] == {"image_count": 2}
    assert answer["output"]["results"][2]["code"] == "InternalError.Timeout"
    assert "url" not in answer["output"]["results"][2]
    failure = query(sandbox, failed)
    assert failure["output"]["code"] == "InternalError.Algo"
    assert "usage" not in failure
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
    sandbox = make(clock, concurrency=1)
    running = create(sandbox)
    pending = create(sandbox)
    assert sandbox.cancel("sk-sandbox", pending)["output"]["task_status"] == "CANCELED"
    for task_id in (running, pending, "no-such-task"):
        with pytest.raises(ApiError) as caught:
            sandbox.cancel("sk-sandbox", task_id)
        assert caught.value.code == "UnsupportedOperation"
    assert query(sandbox, pending)["output"]["task_status"] == "CANCELED"


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


def test_list_filters_and_pages() -> None:
    clock = FakeClock()
    sandbox = make(clock)
    ids = [create(sandbox) for _ in range(3)]
    clock.now += 1
    page = sandbox.list_tasks("sk-sandbox", {"page_size": "2", "status": "RUNNING"})
    assert [row["task_id"] for row in page["data"]] == ids[::-1][:2]
    assert (page["total"], page["total_page"], page["page_no"]) == (3, 2, 1)
    assert sandbox.list_tasks("sk-sandbox", {"status": "SUCCEEDED"})["total"] == 0
    with pytest.raises(ApiError):
        sandbox.list_tasks("sk-sandbox", {"start_time": "yesterday"})
