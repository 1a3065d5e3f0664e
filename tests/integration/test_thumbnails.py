"""Thumbnails beside results, on moto's S3 server: the finisher keeps a copy of the bytes it
streams, makes a JPEG of them, and goes on without one when it cannot."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from PIL import Image

from tests.conftest import make_image
from wanedit.storage import S3Location
from wanedit.workers.client import make_session
from wanedit.workers.provider import ResultItem
from wanedit.workers.thumbs import store_thumbnail
from wanedit.workers.transfer import copy_result

pytestmark = pytest.mark.integration
BUCKET = "wanedit-thumbs"


@pytest.fixture(scope="module")
def s3(s3_server) -> Iterator[object]:
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=s3_server["AWS_ENDPOINT_URL_S3"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    client.create_bucket(Bucket=BUCKET)
    yield client


def test_the_streamed_copy_is_the_stored_result_and_its_thumbnail_lands_beside_it(s3):
    png = make_image(1280, 720, (30, 90, 200))
    s3.put_object(Bucket=BUCKET, Key="provider/result.png", Body=png)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "provider/result.png"}, ExpiresIn=60
    )
    kept = io.BytesIO()
    target = copy_result(
        ResultItem(url=url), 0, job_id="job1", provider_task_id="task1",
        prefix=S3Location(BUCKET, "out/"), s3=s3, downloads=make_session(), timeout=(2, 10),
        allow_private=True, copy=kept,
    )  # fmt: skip
    assert kept.getvalue() == png
    thumb = store_thumbnail(s3, "job1", target, kept.getvalue())
    assert thumb == S3Location(BUCKET, "out/job1/0.thumb.jpg")
    answer = s3.get_object(Bucket=BUCKET, Key=thumb.key)
    assert answer["ContentType"] == "image/jpeg"
    with Image.open(io.BytesIO(answer["Body"].read())) as image:
        assert (image.format, image.size) == ("JPEG", (256, 144))


@pytest.mark.parametrize(
    ("bucket", "data", "problem"),
    [
        (BUCKET, b"\x89PNG\r\n\x1a\n cut short", "cannot identify image file"),
        ("no-such-bucket", make_image(400, 400, (1, 2, 3)), "NoSuchBucket"),
    ],
)
def test_a_thumbnail_that_cannot_be_made_or_written_is_logged_and_skipped(
    s3, caplog, bucket, data, problem
):
    output = S3Location(bucket, "out/job2/0.png")
    with caplog.at_level(logging.WARNING, logger="wanedit.workers"):
        assert store_thumbnail(s3, "job2", output, data) is None
    [record] = [r for r in caplog.records if r.name == "wanedit.workers"]
    assert record.getMessage().startswith(
        f"job job2: no thumbnail for s3://{bucket}/out/job2/0.png"
    )
    assert problem in record.getMessage()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="out/job2/")
    assert listed.get("KeyCount", 0) == 0
