"""S3 addresses and deterministic, sanitized keys."""

from __future__ import annotations

import pytest

from wanedit.storage import S3Location, output_location


def test_output_keys_are_deterministic():
    prefix = S3Location.parse_prefix("s3://bucket/edits")
    assert str(output_location(prefix, "abc", 2)) == "s3://bucket/edits/abc/2.png"
    assert str(output_location(S3Location.parse_prefix("s3://bucket"), "abc", 0)) == (
        "s3://bucket/abc/0.png"
    )


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("http://bucket/key", "must start with s3://"),
        ("s3://Bad_Bucket/key", "is not a valid S3 bucket name"),
        ("s3://bucket//key", "must not start with '/'"),
        ("s3://bucket/a/../b", "'.' or '..' path segments"),
        ("s3://bucket/a/\x07b", "control characters"),
        ("s3://bucket/" + "k" * 1100, "1024-byte key limit"),
    ],
)
def test_bad_uris(uri, problem):
    with pytest.raises(ValueError, match=problem.replace(".", r"\.").replace("(", r"\(")):
        S3Location.parse(uri)


@pytest.mark.parametrize("part", ["", "a/b", ".."])
def test_child_parts_are_checked(part):
    with pytest.raises(ValueError):
        S3Location("bucket", "p/").child(part)
