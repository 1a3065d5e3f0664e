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
from tests.receiver import (
    BROKEN_BODIES,
    GARBLED_BODIES,
    Probe,
    hang_up_mid_body,
    probe_server,
    raw_server,
    rebinding,
    stream_body,
)
from wanedit import limits
from wanedit.errors import (
    TerminalProviderError,
    TerminalStorageError,
    TransientProviderError,
    TransientStorageError,
)
from wanedit.images import encode_data_uri
from wanedit.sandbox.server import SandboxConfig, SandboxServer
from wanedit.sandbox.stack import free_port
from wanedit.storage import S3Location
from wanedit.workers.client import ProviderClient, make_session
from wanedit.workers.provider import ResultItem, TaskState
from wanedit.workers.transfer import PNG_SIGNATURE, copy_result, resolve_image

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


def _client(endpoint: str, read_timeout: float = 60, **credentials: str) -> object:
    from botocore.config import Config

    session = boto3.session.Session(region_name="us-east-1", **credentials)
    return session.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            read_timeout=read_timeout,
        ),
    )


@pytest.mark.parametrize("transport", ["inline", "presigned"])
def test_a_missing_input_object_is_a_terminal_storage_error(s3, transport):
    """Known before any create: never a create the provider refuses for a download it failed."""
    source = f"s3://{BUCKET}/in/none.png"
    with pytest.raises(TerminalStorageError) as raised:
        resolve_image(source, s3, transport, 600)
    assert str(raised.value).startswith(f"input {source} does not exist")


@pytest.mark.parametrize("transport", ["inline", "presigned"])
def test_an_unreachable_s3_is_a_transient_storage_error(transport):
    """S3 down: the create waits and retries, rather than handing the provider a URL it cannot
    download (the provider refuses that create, and retrying it is allowed at most once)."""
    nobody = f"http://127.0.0.1:{free_port()}"
    s3 = _client(nobody, aws_access_key_id="a", aws_secret_access_key="b")
    with pytest.raises(TransientStorageError) as raised:
        resolve_image(f"s3://{BUCKET}/in/a.png", s3, transport, 600)
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


PNG_HEAD = PNG_SIGNATURE + b"\x00\x00\x00\rIHDR" + bytes(64)


def test_a_probe_spelled_to_fool_the_guard_is_never_fetched(s3):
    """`http://127.0.0.1:PORT\\@8.8.8.8/` reads as host 8.8.8.8 to urlsplit but connects to
    127.0.0.1: the guard reads it as urllib3 does, and refuses it as spelled."""
    with probe_server(body=make_image(400, 400, (1, 1, 1))) as probe:
        spellings = [
            f"{probe.base}\\@8.8.8.8/r.png",
            f"{probe.base}\\\\@93.184.216.34:443/r.png",
            f"http://8.8.8.8\\@{probe.host}:{probe.port}/r.png",
        ]
        for url in spellings:
            with pytest.raises(TerminalProviderError) as raised:
                copy(s3, ResultItem(url=url), 7, allow_private=False)
            assert raised.value.code == "UrlNotAllowed"
            assert "backslash" in raised.value.message
    assert probe.hits == []
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=BUCKET, Key="out/job1/7.png")


def test_a_redirect_hop_spelled_to_fool_the_guard_is_never_followed(s3, redirector):
    # Even where private addresses are allowed (the redirector is on 127.0.0.1), every hop is
    # read by the one strict parser.
    with probe_server() as probe:
        hop = f"{probe.base}\\@8.8.8.8/r.png"
        with pytest.raises(TerminalProviderError) as raised:
            copy(s3, ResultItem(url=f"{redirector}/to?url={hop}"), 8)
    assert raised.value.code == "UrlNotAllowed"
    assert "backslash" in raised.value.message
    assert probe.hits == []


def test_a_download_goes_to_the_checked_address_never_to_a_second_answer(s3):
    """The name is checked at a public address, then rebinds to 127.0.0.1: the worker connects
    to the address it checked (unreachable here), and the internal service sees nothing.
    `localhost` is the name so that a second lookup by the system would find 127.0.0.1."""
    calls: list[str] = []
    with (
        probe_server(body=make_image(400, 400, (1, 1, 1))) as probe,
        pytest.raises(TransientProviderError) as raised,
    ):
        copy_result(
            ResultItem(url=f"http://localhost:{probe.port}/r.png"),
            9,
            job_id="job1",
            provider_task_id="task1",
            prefix=S3Location(BUCKET, "out/"),
            s3=s3,
            downloads=make_session(),
            timeout=(0.5, 2),
            allow_private=False,
            resolve=rebinding("8.8.8.8", "127.0.0.1", calls),
        )
    assert calls == ["localhost"]
    assert probe.hits == []
    assert raised.value.code == "DownloadFailed"
    assert "8.8.8.8" in raised.value.message


@pytest.fixture
def two_loopbacks() -> Iterator[tuple[Probe, Probe]]:
    """Two servers on one port: the checked one on 127.0.0.2, a decoy on 127.0.0.1."""
    png = make_image(400, 400, (2, 2, 2))
    for _ in range(20):
        with probe_server("127.0.0.2", body=png) as checked:
            try:
                decoy_server = probe_server("127.0.0.1", checked.port, body=png)
                decoy = decoy_server.__enter__()
            except OSError:
                continue
            try:
                yield checked, decoy
            finally:
                decoy_server.__exit__(None, None, None)
            return
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2")


def test_a_download_connects_to_the_checked_address_and_keeps_the_host_name(s3, two_loopbacks):
    checked, decoy = two_loopbacks
    calls: list[str] = []
    target = copy_result(
        ResultItem(url=f"http://localhost:{checked.port}/r.png"),
        10,
        job_id="job1",
        provider_task_id="task1",
        prefix=S3Location(BUCKET, "out/"),
        s3=s3,
        downloads=make_session(),
        timeout=(2, 10),
        allow_private=True,
        resolve=rebinding("127.0.0.2", "127.0.0.1", calls),
    )
    assert str(target) == f"s3://{BUCKET}/out/job1/10.png"
    assert calls == ["localhost"]
    assert decoy.hits == []
    [(method, path, headers)] = checked.hits
    assert (method, path, headers["host"]) == ("GET", "/r.png", f"localhost:{checked.port}")


@pytest.mark.parametrize("how", GARBLED_BODIES)
def test_a_result_body_cut_short_stalled_or_reset_is_a_transient_download_failure(s3, how):
    with (
        raw_server(hang_up_mid_body(how, PNG_HEAD)) as server,
        pytest.raises(TransientProviderError) as raised,
    ):
        copy_result(
            ResultItem(url=f"{server.url}/r.png"),
            11,
            job_id="job1",
            provider_task_id="task1",
            prefix=S3Location(BUCKET, "out/"),
            s3=s3,
            downloads=make_session(),
            timeout=(2, 0.5),
            allow_private=True,
        )
    assert raised.value.code == "DownloadFailed"
    assert raised.value.message.startswith("result 11: ")
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=BUCKET, Key="out/job1/11.png")


@pytest.mark.parametrize("declared", [True, False])
def test_a_result_is_read_no_further_than_the_image_cap(s3, declared):
    """A 400 MiB answer, generated as it is sent: the worker stops past the cap."""
    total = 400 * 1024 * 1024

    def answer(connection, server) -> None:
        # Without a Content-Length only counting the bytes as they stream can stop it.
        stream_body(connection, server, PNG_HEAD, total, declare=declared)

    with raw_server(answer) as server, pytest.raises(TerminalProviderError) as raised:
        copy(s3, ResultItem(url=f"{server.url}/r.png"), 12)
    assert raised.value.code == "InvalidResult"
    assert "over the limit of 32 MiB per image" in raised.value.message
    [sent] = server.sent
    assert sent < limits.RESULT_BYTES_MAX + 64 * 1024 * 1024 < total
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=BUCKET, Key="out/job1/12.png")


@pytest.mark.parametrize("how", BROKEN_BODIES)
def test_an_s3_answer_cut_short_stalled_or_reset_is_a_transient_storage_error(how):
    """S3 itself breaks mid-answer: reading an input and storing a result both retry later."""
    with raw_server(hang_up_mid_body(how, PNG_HEAD)) as fake_s3:
        s3 = _client(fake_s3.url, 0.5, aws_access_key_id="a", aws_secret_access_key="b")
        with pytest.raises(TransientStorageError) as raised:
            resolve_image(f"s3://{BUCKET}/in/a.png", s3, "inline", 600)
        assert "S3 is unavailable for input" in str(raised.value)
        with (
            probe_server(body=make_image(400, 400, (3, 3, 3))) as origin,
            pytest.raises(TransientStorageError) as raised,
        ):
            copy_result(
                ResultItem(url=f"{origin.base}/r.png"),
                13,
                job_id="job1",
                provider_task_id="task1",
                prefix=S3Location(BUCKET, "out/"),
                s3=s3,
                downloads=make_session(),
                timeout=(2, 10),
                allow_private=True,
            )
        assert "S3 is unavailable for result 13 destination" in str(raised.value)
