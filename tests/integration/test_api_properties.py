"""Bad requests through the Python API and the CLI, on a real Redis and a real S3 endpoint:
each is refused with the field, the problem and the limit, and leaves nothing behind: no job
record, no backlog entry, no broker message, no staged input."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_image
from tests.unit.test_request_properties import invalid_changes, names
from wanedit import limits
from wanedit.config.settings import Settings
from wanedit.errors import InvalidRequest
from wanedit.images import encode_data_uri
from wanedit.intake.context import ProducerContext, build_context
from wanedit.producers import get_job, submit_edit
from wanedit.sandbox.stack import SANDBOX_KEY, patched_env

pytestmark = pytest.mark.integration
FEW = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def env(
    redis_url: str,
    s3_server: dict[str, str],
    run_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    tag = f"props-{run_id}"
    values = {
        **s3_server,
        "WANEDIT_REDIS_URL": redis_url,
        "WANEDIT_KEY_PREFIX": f"wanedit-{tag}",
        "WANEDIT_QUEUE": f"wanedit-{tag}",
        "WANEDIT_EVENTS_STREAM": f"wanedit-{tag}:events",
        "WANEDIT_OUTPUT_URI": f"s3://wanedit-{tag}/out/",
        # Any bucket may be named here, so that what is refused is a bucket that does not exist
        # (tests/unit/test_allow.py and tests/e2e/test_allow_lists.py refuse names).
        "WANEDIT_INPUT_BUCKETS": "*",
        "WANEDIT_OUTPUT_BUCKETS": "*",
        "DASHSCOPE_API_KEY": SANDBOX_KEY,
        # The inputs these tests write live under pytest's temporary directory.
        "WANEDIT_LOCAL_INPUT_DIRS": str(tmp_path_factory.getbasetemp()),
    }
    with patched_env(values):
        boto3.client("s3").create_bucket(Bucket=f"wanedit-{tag}")
        yield values


@pytest.fixture(scope="module")
def ctx(env: dict[str, str]) -> ProducerContext:
    return build_context(Settings())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Local inputs: one good image and one of each kind the producer must refuse."""
    root = tmp_path_factory.mktemp("inputs")
    made = {
        "good": make_image(512, 512, (200, 80, 40)),
        "good2": make_image(640, 480, (20, 80, 200), "JPEG"),
        "tiny": make_image(100, 100, (1, 2, 3)),
        "gif": make_image(512, 512, (9, 9, 9), "GIF"),
        "text": b"this is not an image\n",
    }
    paths = {}
    for name, data in made.items():
        path = root / f"{name}.img"
        path.write_bytes(data)
        paths[name] = str(path)
    from PIL import Image

    alpha = root / "alpha.png"
    Image.new("RGBA", (512, 512), (1, 2, 3, 4)).save(alpha)
    paths["alpha"] = str(alpha)
    paths["dir"] = str(root)
    return paths


def snapshot(ctx: ProducerContext) -> dict[str, Any]:
    """Everything a request could leave behind: our Redis keys, the broker queue, S3 objects."""
    tag = ctx.settings.key_prefix.removeprefix("wanedit-")
    listing = ctx.s3.list_objects_v2(Bucket=ctx.settings.output_location.bucket)
    return {
        "keys": sorted(ctx.redis.scan_iter(match=f"*{tag}*")),
        "queued": ctx.redis.llen(ctx.settings.queue),
        "objects": sorted(item["Key"] for item in listing.get("Contents", [])),
    }


def assert_nothing_new(before: dict[str, Any], after: dict[str, Any]) -> None:
    # Keys may expire meanwhile (admission's nudge marker); none may appear.
    assert set(after["keys"]) <= set(before["keys"]), "a refused request wrote to Redis"
    assert after["queued"] <= before["queued"], "a refused request sent a broker message"
    assert set(after["objects"]) <= set(before["objects"]), "a refused request staged an input"


def refused(ctx: ProducerContext, request: dict[str, Any]) -> InvalidRequest:
    before = snapshot(ctx)
    with pytest.raises(InvalidRequest) as raised:
        submit_edit(request, context=ctx)
    assert_nothing_new(before, snapshot(ctx))
    return raised.value


# Sources the request model accepts but the producer must refuse: (source, message fragment).
def producer_bad_sources(files: dict[str, str], bucket: str) -> st.SearchStrategy:
    suffix = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=8)
    tiny = encode_data_uri(make_image(100, 100, (5, 5, 5)), "image/png")
    return st.one_of(
        suffix.map(lambda s: (f"/no/such/dir/{s}.png", "is outside WANEDIT_LOCAL_INPUT_DIRS")),
        suffix.map(lambda s: (f"{files['dir']}/missing-{s}.png", "cannot read local file")),
        st.just((files["dir"], "is not a regular file")),
        st.just((files["text"], "not a readable image")),
        st.just((files["gif"], "format GIF is not accepted")),
        st.just((files["alpha"], "alpha channel")),
        st.just((files["tiny"], f"below the provider's minimum width of {limits.SIDE_MIN} px")),
        st.just((tiny, f"of {limits.SIDE_MIN} px")),
        st.just(("data:image/png;base64,@@@not-base64", "not valid base64")),
        st.just(("data:nothing-here", "a data URI must look like")),
        st.just(
            (
                "data:image/png;base64," + base64.b64encode(b"GIF89a not really").decode(),
                "not a readable image",
            )
        ),
        suffix.map(lambda s: (f"s3://{bucket}/missing/{s}.png", "does not exist")),
        suffix.map(lambda s: (f"s3://no-such-bucket-{s}/a.png", "does not exist")),
    )


@FEW
@given(data=st.data())
def test_a_request_the_producer_cannot_use_is_refused_and_stages_nothing(ctx, files, data):
    bucket = ctx.settings.output_location.bucket
    source, fragment = data.draw(producer_bad_sources(files, bucket))
    images = data.draw(st.lists(st.sampled_from([files["good"], files["good2"]]), max_size=2))
    index = data.draw(st.integers(0, len(images)))
    images.insert(index, source)
    error = refused(ctx, {"prompt": "Add a hat", "images": images})
    assert error.problems == [error.problems[0]]
    assert names(error.problems[0], f"images[{index}]"), error.problems
    assert fragment in error.problems[0], error.problems


@FEW
@given(change=invalid_changes)
def test_a_request_breaking_the_contract_is_refused_and_enqueues_nothing(ctx, files, change):
    field, value, fragment = change
    top = field.partition("[")[0]
    request = {"prompt": "Add a hat", "images": [files["good"]], top: value}
    error = refused(ctx, request)
    assert any(names(problem, field) for problem in error.problems), (field, error.problems)
    assert fragment in str(error)


def test_an_output_bucket_that_does_not_exist_is_refused_before_staging(ctx, files):
    error = refused(
        ctx,
        {"prompt": "p", "images": [files["good"]], "output": "s3://no-such-bucket-here/out/"},
    )
    assert error.problems == ["output: bucket 'no-such-bucket-here' does not exist"]


def test_the_probe_sees_what_a_valid_request_leaves(ctx, files):
    """The emptiness checks above mean something: a valid request shows up in every probe."""
    before = snapshot(ctx)
    job_id = submit_edit({"prompt": "p", "images": [files["good"]]}, context=ctx)
    after = snapshot(ctx)
    assert get_job(job_id, context=ctx)["status"] == "queued"
    assert len(after["keys"]) > len(before["keys"])
    assert [key for key in after["objects"] if job_id in key] == [
        f"wanedit-staging/{job_id}/input-0.png"
    ]
    assert f"{ctx.settings.key_prefix}:job:{job_id}" in after["keys"]


# --- the CLI, as a real process -------------------------------------------------------------


def wanedit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wanedit.producers.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli_changes(good: str) -> st.SearchStrategy:
    """Arguments that break one field, and what stderr must then say about it."""
    out_of_n = st.integers(-5, 0) | st.integers(5, 50)
    out_of_seed = st.integers(-(10**6), -1) | st.integers(limits.SEED_MAX + 1, 2**40)
    return st.one_of(
        out_of_n.map(lambda n: ([f"--n={n}"], f"invalid request: n: {n} is outside 1 to 4")),
        st.just((["--n=two"], "'--n'")),
        out_of_seed.map(lambda s: ([f"--seed={s}"], f"seed: {s} is outside 0 to 2147483647")),
        st.sampled_from(["100*100", "1280*1281", "4000*400", "12x12", "1024*1024 "]).map(
            lambda size: ([f"--size={size}"], "invalid request: size: ")
        ),
        st.sampled_from([" ", "\t"]).map(
            lambda p: ([f"--prompt={p}"], "prompt: must not be empty")
        ),
        st.integers(2001, 2100).map(
            lambda k: ([f"--prompt={'x' * k}"], f"prompt: {k} characters is over")
        ),
        st.integers(501, 600).map(
            lambda k: ([f"--negative-prompt={'x' * k}"], "negative_prompt: ")
        ),
        st.just((["--image", good] * 3, "images: 4 images given; the provider takes 1 to 3")),
        st.sampled_from(["ftp", "gopher"]).map(
            lambda s: ([f"--image={s}://h/a.png"], "images[1]: scheme")
        ),
        st.sampled_from(["{oops", "[1, 2]", '"text"', '{"a": NaN}']).map(
            lambda m: ([f"--metadata={m}"], "invalid request: metadata")
        ),
        st.just(([f'--metadata={{"b": "{"x" * 4100}"}}'], "over the limit of 4096")),
        st.sampled_from(["has space", "é"]).map(
            lambda k: ([f"--idempotency-key={k}"], "idempotency_key: must be printable ASCII")
        ),
        st.sampled_from(["bucket/out/", "s3://B/out/"]).map(
            lambda o: ([f"--output={o}"], "invalid request: output: ")
        ),
        st.just((["--priority=urgent"], "'--priority'")),
    )


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_cli_with_a_bad_argument_exits_2_naming_it(env, ctx, files, data):
    args, fragment = data.draw(cli_changes(files["good"]))
    before = snapshot(ctx)
    result = wanedit(env, "submit", "--prompt=Add a hat", "--image", files["good"], *args)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_new(before, snapshot(ctx))


def test_cli_with_a_missing_image_exits_2(env, ctx):
    before = snapshot(ctx)
    result = wanedit(env, "submit", "--prompt=p")
    assert result.returncode == 2
    assert "Missing option '--image'" in result.stderr
    assert_nothing_new(before, snapshot(ctx))


def test_cli_with_an_unusable_local_file_exits_2(env, ctx, files):
    before = snapshot(ctx)
    result = wanedit(
        env, "submit", "--prompt=p", "--image", files["good"], "--image", files["alpha"]
    )
    assert result.returncode == 2
    assert (
        "wanedit: invalid request: images[1]: PNG with an alpha channel is not accepted"
        in result.stderr
    )
    assert_nothing_new(before, snapshot(ctx))
