"""The enqueue contract: every violation names the field, the problem and the limit."""

from __future__ import annotations

import pytest

from wanedit.errors import InvalidRequest
from wanedit.request import SourceKind, parse_request, parse_size, source_kind

VALID = {"prompt": "Make it red", "images": ["https://example.com/a.png"]}


def test_defaults_are_the_cheap_and_safe_ones():
    request = parse_request(VALID)
    assert request.n == 1
    assert request.prompt_extend is True
    assert request.watermark is False
    assert request.seed is None


def test_provider_input_always_sends_n():
    request = parse_request({**VALID, "negative_prompt": "blur", "size": "1024*1024", "seed": 3})
    payload = request.provider_input(["https://x/1.png"])
    assert payload == {
        "input": {
            "prompt": "Make it red",
            "images": ["https://x/1.png"],
            "negative_prompt": "blur",
        },
        "parameters": {
            "n": 1,
            "prompt_extend": True,
            "watermark": False,
            "size": "1024*1024",
            "seed": 3,
        },
    }


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"prompt": ""}, "prompt: must not be empty"),
        ({"prompt": "   "}, "prompt: must not be empty"),
        (
            {"prompt": "x" * 2001},
            "prompt: 2001 characters is over the provider's limit of 2000 "
            "(the provider would silently truncate it)",
        ),
        (
            {"negative_prompt": "x" * 501},
            "negative_prompt: 501 characters is over the provider's limit of 500",
        ),
        ({"images": []}, "images: 0 images given; the provider takes 1 to 3"),
        ({"images": ["a.png"] * 4}, "images: 4 images given; the provider takes 1 to 3"),
        (
            {"images": ["s3://bucket/"]},
            "images[0]: must name an object, like s3://bucket/path/image.png",
        ),
        ({"images": ["s3://B/x.png"]}, "images[0]: bucket 'B' is not a valid S3 bucket name"),
        ({"images": ["a.png", ""]}, "images[1]: must not be empty"),
        ({"n": 0}, "n: 0 is outside 1 to 4 images"),
        ({"n": 5}, "n: 5 is outside 1 to 4 images"),
        ({"n": "2"}, "n: Input should be a valid integer"),
        ({"seed": -1}, "seed: -1 is outside 0 to 2147483647"),
        ({"seed": 2147483648}, "seed: 2147483648 is outside 0 to 2147483647"),
        ({"size": "1024x1024"}, "size: '1024x1024' must look like W*H, for example 1280*1280"),
        (
            {"size": "512*512"},
            "size: 512*512 is 262144 pixels, outside the provider's range of "
            "768*768 (589824) to 1280*1280 (1638400)",
        ),
        (
            {"size": "2560*600"},
            "size: 2560*600 has an aspect ratio outside the provider's 1:4 to 4:1",
        ),
        ({"output": "bucket/prefix"}, "output: must start with s3:// (got 'bucket/prefix')"),
        (
            {"output": "s3://bucket/../x/"},
            "output: the key must not contain '.' or '..' path segments",
        ),
        ({"output": "s3:///edits/"}, "output: bucket '' is not a valid S3 bucket name"),
        ({"output": "s3://bucket//edits/"}, "output: the key must not start with '/'"),
        (
            {"output": "s3://bucket/a/./b/"},
            "output: the key must not contain '.' or '..' path segments",
        ),
        (
            {"output": "s3://bucket/a//b/"},
            "output: the key must not contain empty path segments ('//')",
        ),
        ({"output": "s3://bucket/a\nb/"}, "output: the key must not contain control characters"),
        ({"output": "s3://bucket/a\x85b/"}, "output: the key must not contain control characters"),
        ({"output": "s3://bucket/" + "p" * 600}, "output: the prefix is longer than 512 bytes"),
        (
            {"images": ["s3://bucket/../etc/x.png"]},
            "images[0]: the key must not contain '.' or '..' path segments",
        ),
        ({"metadata": {"a": "x" * 5000}}, "metadata: 5008 bytes of JSON is over the limit of 4096"),
        (
            {"idempotency_key": "has space"},
            "idempotency_key: must be printable ASCII without spaces",
        ),
        ({"idempotency_key": "k" * 201}, "idempotency_key: must be 1 to 200 characters"),
        ({"watermark": "yes"}, "watermark: Input should be a valid boolean"),
        ({"colour": "red"}, "colour: is not a field of an edit request"),
    ],
)
def test_invalid_requests_name_field_problem_and_limit(changes, problem):
    with pytest.raises(InvalidRequest) as raised:
        parse_request({**VALID, **changes})
    assert raised.value.problems == [problem]


def test_all_problems_are_reported_at_once():
    with pytest.raises(InvalidRequest) as raised:
        parse_request({"prompt": "", "images": [], "n": 7})
    assert len(raised.value.problems) == 3


@pytest.mark.parametrize(
    ("size", "expected"),
    [("768*768", (768, 768)), ("1280*1280", (1280, 1280)), ("2048*512", (2048, 512))],
)
def test_sizes_at_the_limits_are_accepted(size, expected):
    assert parse_size(size) == expected


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("https://example.com/a.png", SourceKind.URL),
        ("http://127.0.0.1:9000/a.png", SourceKind.URL),
        ("s3://bucket/a.png", SourceKind.S3),
        ("data:image/png;base64,AAAA", SourceKind.DATA),
        ("/tmp/a.png", SourceKind.PATH),
        ("relative/a.jpg", SourceKind.PATH),
    ],
)
def test_source_kinds(source, kind):
    assert source_kind(source) is kind


def test_output_prefix_gets_a_trailing_slash():
    assert parse_request({**VALID, "output": "s3://bucket/edits"}).output == "s3://bucket/edits/"
