"""`webhook_url` is another name for `callback_url`: one field, two spellings."""

from __future__ import annotations

import jsonschema
import pytest

from wanedit.errors import InvalidRequest
from wanedit.request import EditRequest, parse_request

BASE = {"prompt": "p", "images": ["https://example.com/a.png"]}
A, B = "https://hooks.example.com/a", "https://hooks.example.com/b"


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ({"webhook_url": A}, A),
        ({"callback_url": A}, A),
        ({"callback_url": A, "webhook_url": A}, A),
        ({}, None),
    ],
)
def test_either_name_sets_both(given, url):
    request = parse_request({**BASE, **given})
    assert (request.callback_url, request.webhook_url) == (url, url)
    stored = request.model_dump(mode="json")
    assert (stored["callback_url"], stored["webhook_url"]) == (url, url)
    assert parse_request(stored) == request  # a stored request reads back as it was


def test_two_different_urls_are_refused_naming_both_fields_not_the_values():
    with pytest.raises(InvalidRequest) as caught:
        parse_request({**BASE, "callback_url": A, "webhook_url": B})
    [problem] = caught.value.problems
    assert "callback_url and webhook_url" in problem and "different values" in problem
    assert A not in problem and B not in problem


def test_a_bad_webhook_url_names_its_own_field():
    with pytest.raises(InvalidRequest) as caught:
        parse_request({**BASE, "webhook_url": "ftp://hooks.example.com/x"})
    assert caught.value.problems[0].startswith("webhook_url: ")


def test_the_schema_shows_both_names():
    schema = EditRequest.model_json_schema()
    assert "callback_url" in schema["properties"]["webhook_url"]["description"]
    jsonschema.Draft202012Validator(schema).validate({**BASE, "webhook_url": A})
