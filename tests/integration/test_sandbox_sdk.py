"""The official dashscope SDK, unchanged, against the sandbox."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from http import HTTPStatus

import dashscope
import pytest
import requests
from dashscope import ImageSynthesis
from PIL import Image

from wanedit.sandbox.server import SandboxConfig, SandboxServer

pytestmark = pytest.mark.integration

KEY = "sk-sandbox"
MODEL = "wan2.5-i2i-preview"


def data_uri(size: tuple[int, int] = (800, 800)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 160, 90)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def start(monkeypatch: pytest.MonkeyPatch, **config: object) -> SandboxServer:
    settings: dict[str, object] = {"port": 0, "duration_min": 0.3, "duration_max": 0.5}
    settings.update(config)
    server = SandboxServer(SandboxConfig(**settings)).start()  # type: ignore[arg-type]
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", server.base_url)
    # The SDK reads the env var at import time, so set the module attribute too.
    monkeypatch.setattr(dashscope, "base_http_api_url", server.base_url)
    return server


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    server = start(monkeypatch)
    yield server
    server.stop()


def test_call_returns_a_downloadable_result(sandbox: SandboxServer) -> None:
    rsp = ImageSynthesis.call(
        api_key=KEY,
        model=MODEL,
        prompt="Put a straw hat on the subject",
        images=[data_uri()],
        n=1,
        size="1024*1024",
        prompt_extend=True,
        watermark=False,
        seed=12345,
    )
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    assert rsp.usage.image_count == 1
    result = rsp.output.results[0]
    assert result.orig_prompt == "Put a straw hat on the subject"
    png = requests.get(result.url, timeout=10)
    image = Image.open(io.BytesIO(png.content))
    assert (image.format, image.size) == ("PNG", (1024, 1024))


def test_async_call_fetch_cancel_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    server = start(monkeypatch, concurrency=1, duration_min=30.0, duration_max=30.0)
    try:
        first = ImageSynthesis.async_call(
            api_key=KEY, model=MODEL, prompt="a", images=[data_uri()], n=1
        )
        second = ImageSynthesis.async_call(
            api_key=KEY, model=MODEL, prompt="b", images=[data_uri()], n=1
        )
        assert first.status_code == second.status_code == HTTPStatus.OK
        assert second.output.task_status == "PENDING"

        fetched = ImageSynthesis.fetch(task=first, api_key=KEY)
        assert fetched.status_code == HTTPStatus.OK
        assert fetched.output.task_status == "RUNNING"

        # The SDK's .pyi stub omits cancel and list, which the class inherits.
        canceled = ImageSynthesis.cancel(task=second, api_key=KEY)  # type: ignore[attr-defined]
        assert canceled.status_code == HTTPStatus.OK
        assert canceled.request_id
        assert not canceled.output  # the provider answers only {"request_id"}
        assert ImageSynthesis.fetch(task=second, api_key=KEY).output.task_status == "CANCELED"
        refused = ImageSynthesis.cancel(task=first, api_key=KEY)  # type: ignore[attr-defined]
        assert refused.status_code == HTTPStatus.BAD_REQUEST
        assert refused.code == "UnsupportedOperation"

        listed = ImageSynthesis.list(  # type: ignore[attr-defined]
            api_key=KEY, model_name=MODEL, page_size=10
        )
        assert listed.status_code == HTTPStatus.OK
        rows = {row["task_id"]: row for row in listed.output["data"]}
        assert {task_id: row["status"] for task_id, row in rows.items()} == {
            first.output.task_id: "RUNNING",
            second.output.task_id: "CANCELED",
        }
        assert rows[first.output.task_id]["request_id"] == first.request_id
        assert listed.output["total"] == 2

        window = ImageSynthesis.list(  # type: ignore[attr-defined]
            api_key=KEY, start_time="20200101000000", end_time="20200102000000"
        )
        assert (window.status_code, window.output["data"]) == (HTTPStatus.OK, [])
        too_wide = ImageSynthesis.list(  # type: ignore[attr-defined]
            api_key=KEY, start_time="20200101000000", end_time="20200103000000"
        )
        assert (too_wide.status_code, too_wide.code) == (400, "InvalidParameter")
    finally:
        server.stop()


def test_errors_come_back_as_responses(sandbox: SandboxServer) -> None:
    rsp = ImageSynthesis.async_call(
        api_key="sk-nope", model=MODEL, prompt="a", images=[data_uri()], n=1
    )
    assert (rsp.status_code, rsp.code) == (401, "InvalidApiKey")
    rsp = ImageSynthesis.async_call(
        api_key=KEY, model=MODEL, prompt="a", images=[data_uri((100, 100))], n=1
    )
    assert (rsp.status_code, rsp.code) == (400, "InvalidParameter")
    unknown = ImageSynthesis.fetch(task="00000000-0000-0000-0000-000000000000", api_key=KEY)
    assert unknown.status_code == HTTPStatus.OK
    assert unknown.output.task_status == "UNKNOWN"


def test_lost_create_answers_as_the_sdk_sees_them(sandbox: SandboxServer) -> None:
    gateway = ImageSynthesis.async_call(
        api_key=KEY, model=MODEL, prompt="a [sandbox:lost-504]", images=[data_uri()], n=1
    )
    assert (gateway.status_code, gateway.code) == (504, "Unknown")  # the HTML page, not JSON
    # The SDK resends once on a dropped connection: one call, two tasks at the provider.
    with pytest.raises(requests.ConnectionError):
        ImageSynthesis.async_call(
            api_key=KEY, model=MODEL, prompt="b [sandbox:lost-drop]", images=[data_uri()], n=1
        )
    stats = sandbox.stats()
    assert stats["repeated_prompts"] == {"b [sandbox:lost-drop]": 2}
    assert stats["lost_answers_by_mode"] == {"504": 1, "drop": 2}
    listed = ImageSynthesis.list(api_key=KEY)  # type: ignore[attr-defined]
    assert listed.output["total"] == 3
