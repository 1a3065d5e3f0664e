"""Moving bytes over real connections: presigned and inline inputs, streaming results into S3."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator

import boto3
import pytest
from PIL import Image

from sandbox.server import SandboxConfig, SandboxServer
from tests.conftest import make_image
from wanedit.errors import TerminalProviderError
from wanedit.images import encode_data_uri
from wanedit.storage import S3Location
from workers.client import ProviderClient, make_session
from workers.provider import ResultItem, TaskState
from workers.transfer import copy_result, resolve_image

pytestmark = pytest.mark.integration
BUCKET = "wanedit-transfer"


@pytest.fixture(scope="module")
def s3(s3_server) -> Iterator[object]:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    from botocore.config import Config

    client = session.client(
        "s3",
        endpoint_url=s3_server["AWS_ENDPOINT_URL_S3"],
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="in/a.png", Body=make_image(500, 400, (9, 9, 200)))
    yield client


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(api_keys=("sk-t",), duration_min=0.1, duration_max=0.2, result_ttl=2.0)
    ).start()
    yield server
    server.stop()


def run_task(sandbox: SandboxServer, image: str, n: int = 1) -> TaskState:
    provider = ProviderClient(make_session(), sandbox.base_url, "sk-t")
    task_id, _ = provider.create(
        "wan2.5-i2i-preview",
        {"input": {"prompt": "résumé ✓ edit", "images": [image]}, "parameters": {"n": n}},
    )
    for _ in range(100):
        state = provider.get(task_id)
        if state.status == "SUCCEEDED":
            return state
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish: {state}")


def test_presigned_input_is_fetched_by_the_provider(s3, sandbox):
    url = resolve_image(f"s3://{BUCKET}/in/a.png", s3, "presigned", 600)
    assert url.startswith("http") and "Signature" in url
    assert run_task(sandbox, url).image_count == 1


def test_inline_input_is_a_data_uri_of_the_object(s3, sandbox):
    uri = resolve_image(f"s3://{BUCKET}/in/a.png", s3, "inline", 600)
    assert uri.startswith("data:image/")
    data = base64.b64decode(uri.split(",", 1)[1])
    assert Image.open(io.BytesIO(data)).size == (500, 400)
    assert run_task(sandbox, uri).status == "SUCCEEDED"


def test_urls_pass_through_untouched(s3):
    assert resolve_image("https://example.com/a.png", s3, "inline", 600) == (
        "https://example.com/a.png"
    )


def copy(s3, item: ResultItem, index: int = 0) -> S3Location:
    return copy_result(
        item,
        index,
        job_id="job1",
        provider_task_id="task1",
        prefix=S3Location(BUCKET, "out/"),
        s3=s3,
        downloads=make_session(),
        timeout=(2, 10),
    )


def test_result_is_streamed_into_s3_with_metadata(s3, sandbox):
    state = run_task(sandbox, encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png"), n=2)
    target = copy(s3, state.results[1], 1)
    assert str(target) == f"s3://{BUCKET}/out/job1/1.png"
    answer = s3.get_object(Bucket=BUCKET, Key=target.key)
    assert answer["ContentType"] == "image/png"
    assert answer["Metadata"]["job-id"] == "job1"
    assert answer["Metadata"]["provider-task-id"] == "task1"
    assert "r%C3%A9sum%C3%A9" in answer["Metadata"]["actual-prompt"]  # non-ASCII is quoted
    assert Image.open(io.BytesIO(answer["Body"].read())).format == "PNG"


def test_expired_result_url_is_a_clear_terminal_error(s3, sandbox):
    state = run_task(sandbox, encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png"))
    time.sleep(3.2)  # past the sandbox's 2 s result TTL
    with pytest.raises(TerminalProviderError) as raised:
        copy(s3, state.results[0])
    assert raised.value.code == "ResultExpired"
    assert "HTTP 403" in raised.value.message


def test_a_result_that_is_not_png_is_refused(s3, s3_server):
    # A URL that answers 200 with something else: a JPEG object on the S3 server.
    s3.put_object(Bucket=BUCKET, Key="in/photo.jpg", Body=make_image(400, 400, (5, 5, 5), "JPEG"))
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "in/photo.jpg"}, ExpiresIn=60
    )
    with pytest.raises(TerminalProviderError) as raised:
        copy(s3, ResultItem(url=url), 3)
    assert raised.value.code == "InvalidResult"
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=BUCKET, Key="out/job1/3.png")


@pytest.mark.parametrize("url", ["not a url", "ftp://host/1.png", "http://", "https://[::1/x"])
def test_a_result_url_that_cannot_be_fetched_is_terminal_not_retried(s3, url):
    with pytest.raises(TerminalProviderError) as raised:
        copy(s3, ResultItem(url=url))
    assert raised.value.code == "InvalidResult"
    assert "cannot be fetched" in raised.value.message
