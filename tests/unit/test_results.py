"""Results people can open: URL lifetimes, presigned URLs beside the outputs, thumbnail keys."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from wanedit.config.settings import load_settings
from wanedit.errors import ConfigError
from wanedit.results import URL_TTL_MAX, check_ttl, with_urls
from wanedit.storage import S3Location, thumbnail_location


def signer():
    """A real boto3 client: signing is local, nothing is sent to the endpoint."""
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-real-secret-key",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.mark.parametrize(
    ("ttl", "ok"),
    [(0, False), (-5, False), (1, True), (3600, True), (604800, True), (604801, False)],
)
def test_a_url_lifetime_is_1_to_604800_seconds(ttl, ok):
    if ok:
        assert check_ttl(ttl) == ttl
    else:
        with pytest.raises(ValueError, match=rf"--ttl: {ttl} s is outside 1 to 604800 s"):
            check_ttl(ttl)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 0), ("0", 0), ("900", 900), (str(URL_TTL_MAX), URL_TTL_MAX)]
)
def test_the_setting_is_off_by_default_and_takes_up_to_seven_days(monkeypatch, value, expected):
    monkeypatch.setenv("WANEDIT_ENV_FILE", "")
    if value is None:
        monkeypatch.delenv("WANEDIT_RESULT_URL_TTL", raising=False)
    else:
        monkeypatch.setenv("WANEDIT_RESULT_URL_TTL", value)
    assert load_settings().result_url_ttl == expected


@pytest.mark.parametrize("value", ["604801", "-1", "soon"])
def test_a_bad_setting_is_refused_naming_it(monkeypatch, value):
    monkeypatch.setenv("WANEDIT_ENV_FILE", "")
    monkeypatch.setenv("WANEDIT_RESULT_URL_TTL", value)
    with pytest.raises(ConfigError, match="WANEDIT_RESULT_URL_TTL"):
        load_settings()


@pytest.mark.parametrize(
    ("key", "thumb"),
    [
        ("out/b1/job/0.png", "out/b1/job/0.thumb.jpg"),
        ("job/3.png", "job/3.thumb.jpg"),
        ("0.png", "0.thumb.jpg"),
        ("a.b/job/1", "a.b/job/1.thumb.jpg"),
    ],
)
def test_a_thumbnail_sits_beside_its_result(key, thumb):
    assert thumbnail_location(S3Location("bkt", key)) == S3Location("bkt", thumb)


def test_each_stored_output_gets_a_url_and_when_it_expires():
    outputs = [
        {"index": 0, "uri": "s3://bkt/out/j/0.png", "thumbnail": "s3://bkt/out/j/0.thumb.jpg"},
        {"index": 1, "error": {"code": "InvalidResult", "message": "m"}},
        {"index": 2, "uri": "s3://bkt/out/j/2.png"},
    ]
    signed = with_urls(outputs, signer(), 900, now=1_700_000_000.0)
    assert signed[1] == outputs[1]
    assert "thumbnail_url" not in signed[2]
    for output, path in ((signed[0], "/bkt/out/j/0.png"), (signed[2], "/bkt/out/j/2.png")):
        url = urlsplit(output["url"])
        query = parse_qs(url.query)
        assert (url.scheme, url.path) == ("http", path)
        assert query["X-Amz-Expires"] == ["900"]
        assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
        assert "not-a-real-secret-key" not in output["url"]
        assert output["url_expires_at"] == "2023-11-14T22:28:20+00:00"
    assert urlsplit(signed[0]["thumbnail_url"]).path == "/bkt/out/j/0.thumb.jpg"
    # What was stored is left as it was: the URLs are added to a copy.
    assert "url" not in outputs[0]
