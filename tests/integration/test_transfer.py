"""Moving bytes over real connections: presigned and inline inputs, streaming results into S3."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from PIL import Image

from tests.conftest import make_image
from wanedit.errors import TerminalProviderError, TerminalStorageError, TransientStorageError
from wanedit.images import encode_data_uri
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import free_port
from wanedit.storage import S3Location
from wanedit.workers.client import ProviderClient, make_session
from wanedit.workers.provider import ResultItem, TaskState
from wanedit.workers.transfer import copy_result, resolve_image

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


def copy(s3, item: ResultItem, index: int = 0, allow_private: bool = True) -> S3Location:
    return copy_result(
        item,
        index,
        job_id="job1",
        provider_task_id="task1",
        prefix=S3Location(BUCKET, "out/"),
        s3=s3,
        downloads=make_session(),
        timeout=(2, 10),
        allow_private=allow_private,  # the sandbox serves results on 127.0.0.1
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
    # The URL guard refuses what is not http(s) to a real host; requests refuses the rest.
    assert raised.value.code in ("InvalidResult", "UrlNotAllowed")
    assert "cannot be fetched" in raised.value.message or "refused" in raised.value.message


def test_local_paths_are_never_read_by_a_worker(s3, image_file):
    real = str(image_file("local.png"))
    for source in (real, f"file://{real}", "/etc/passwd"):
        with pytest.raises(ValueError, match="is a local path; workers never read local files"):
            resolve_image(source, s3, "inline", 600)


@pytest.fixture(scope="module")
def redirector(sandbox) -> Iterator[str]:
    """A real HTTP server whose paths redirect: /to?url=U goes to U, /loop to itself."""

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/to?url="):
                location = self.path.removeprefix("/to?url=")
            else:
                location = self.path
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_private_result_url_is_refused_and_never_fetched(s3, sandbox):
    state = run_task(sandbox, encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png"))
    fetched = sandbox.stats()["downloads"]
    with pytest.raises(TerminalProviderError) as raised:
        copy(s3, state.results[0], 4, allow_private=False)
    assert raised.value.code == "UrlNotAllowed"
    assert raised.value.message.startswith("result 4: refused to fetch from 127.0.0.1: ")
    assert "it resolves to 127.0.0.1: loopback address" in raised.value.message
    assert sandbox.stats()["downloads"] == fetched
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=BUCKET, Key="out/job1/4.png")


def test_redirects_are_followed_one_checked_hop_at_a_time(s3, sandbox, redirector):
    state = run_task(sandbox, encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png"))
    via = ResultItem(url=f"{redirector}/to?url={state.results[0].url}")
    assert str(copy(s3, via, 5)) == f"s3://{BUCKET}/out/job1/5.png"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/to?url=file:///etc/passwd", "scheme 'file' is not http or https"),
        ("/to?url=gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is not http or https"),
        ("/loop", "more than 5 redirects"),
    ],
)
def test_a_redirect_cannot_escape_the_guard(s3, redirector, path, reason):
    with pytest.raises(TerminalProviderError) as raised:
        copy(s3, ResultItem(url=redirector + path), 6)
    assert raised.value.code == "UrlNotAllowed"
    assert reason in raised.value.message


def _client(endpoint: str, **credentials: str) -> object:
    from botocore.config import Config

    session = boto3.session.Session(region_name="us-east-1", **credentials)
    return session.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_a_missing_input_object_is_a_terminal_storage_error(s3):
    source = f"s3://{BUCKET}/in/none.png"
    with pytest.raises(TerminalStorageError) as raised:
        resolve_image(source, s3, "inline", 600)
    assert str(raised.value) == f"input {source} does not exist (NoSuchKey)"


def test_an_unreachable_s3_is_a_transient_storage_error():
    nobody = f"http://127.0.0.1:{free_port()}"
    s3 = _client(nobody, aws_access_key_id="a", aws_secret_access_key="b")
    with pytest.raises(TransientStorageError) as raised:
        resolve_image(f"s3://{BUCKET}/in/a.png", s3, "inline", 600)
    assert "S3 is unavailable for input" in str(raised.value)
    assert "EndpointConnectionError" in str(raised.value)


def test_a_missing_destination_bucket_is_a_terminal_storage_error(s3, sandbox):
    state = run_task(sandbox, encode_data_uri(make_image(512, 512, (1, 2, 3)), "image/png"))
    with pytest.raises(TerminalStorageError) as raised:
        copy_result(
            state.results[0],
            0,
            job_id="job1",
            provider_task_id="task1",
            prefix=S3Location("no-such-bucket", "out/"),
            s3=s3,
            downloads=make_session(),
            timeout=(2, 10),
            allow_private=True,
        )
    assert "no-such-bucket/out/job1/0.png does not exist (NoSuchBucket)" in str(raised.value)
