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
        ("s3://bucket/a/\x00b", "control characters"),
        ("s3://bucket/a/\x9bb", "control characters"),
        ("s3://bucket/a/\x7fb", "control characters"),
        ("s3://bucket//", "must not start with '/'"),
        ("s3://bucket/..", "'.' or '..' path segments"),
        ("s3://bucket/./a", "'.' or '..' path segments"),
        ("s3://bucket/a/..", "'.' or '..' path segments"),
        ("s3://bucket/a//b", "empty path segments"),
        ("s3://bucket/a///", "empty path segments"),
        ("s3://bucket/" + "k" * 1100, "1024-byte key limit"),
    ],
)
def test_bad_uris(uri, problem):
    with pytest.raises(ValueError, match=problem.replace(".", r"\.").replace("(", r"\(")):
        S3Location.parse(uri)


@pytest.mark.parametrize(
    "key", ["edits/", "a/b/c.png", "a..b/c", ".hidden/x", "résumé/ü.png", "", "x" * 1024]
)
def test_good_keys_pass(key):
    assert S3Location.parse(f"s3://bucket/{key}").key == key


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://bucket/" + "p" * 512, "the prefix is longer than 512 bytes"),
        ("s3://bucket/a/../", "'.' or '..' path segments"),
        ("s3://bucket/\r\n/", "control characters"),
    ],
)
def test_bad_prefixes(uri, problem):
    with pytest.raises(ValueError, match=problem.replace(".", r"\.")):
        S3Location.parse_prefix(uri)


def test_longest_prefix_still_fits_every_key_under_it():
    prefix = S3Location.parse_prefix("s3://bucket/" + "p" * 510)
    assert len(output_location(prefix, "f" * 32, 3).key) < 1024


@pytest.mark.parametrize("part", ["", "a/b", "..", ".", "a\x00"])
def test_child_parts_are_checked(part):
    with pytest.raises(ValueError):
        S3Location("bucket", "p/").child(part)
