"""`wanedit schema`: the enqueue contract as JSON Schema, generated from the model alone."""

from __future__ import annotations

import json

import jsonschema
import pytest
from click.testing import CliRunner

from wanedit.errors import InvalidRequest
from wanedit.ids import is_job_id, new_job_id
from wanedit.producers.cli import main
from wanedit.request import EditRequest, parse_request, remote_problems

SCHEMA = EditRequest.model_json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_printed_schema_is_the_models():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == SCHEMA


def test_output_writes_the_same_schema_to_a_file(tmp_path):
    target = tmp_path / "edit-request.schema.json"
    result = CliRunner().invoke(main, ["schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert json.loads(target.read_text()) == SCHEMA


def test_schema_is_draft_2020_12_and_names_itself():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == "urn:wanedit:edit-request:1"
    assert SCHEMA["title"] == "wanedit edit request"
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["required"] == ["prompt", "images"]


def test_every_field_is_described():
    assert set(SCHEMA["properties"]) == set(EditRequest.model_fields)
    for name, field in SCHEMA["properties"].items():
        assert len(field.get("description", "")) > 20, name


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("prompt", "2000"),
        ("negative_prompt", "500"),
        ("images", "1 to 3"),
        ("n", "1 to 4"),
        ("size", "768*768 to 1280*1280"),
        ("seed", "2147483647"),
        ("metadata", "4096 bytes"),
        ("idempotency_key", "200"),
    ],
)
def test_descriptions_state_the_limits(name, limit):
    assert limit in SCHEMA["properties"][name]["description"]


@pytest.mark.parametrize("example", SCHEMA["examples"])
def test_examples_are_valid_for_the_schema_and_the_model(example):
    VALIDATOR.validate(example)
    assert parse_request(example).model_dump(exclude_unset=True) == example


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": ""},
        {"prompt": "x" * 2001},
        {"negative_prompt": "x" * 501},
        {"images": []},
        {"images": ["https://a/1.png"] * 4},
        {"n": 0},
        {"n": 5},
        {"n": "2"},
        {"seed": -1},
        {"seed": 2**31},
        {"size": "big"},
        {"output": "https://bucket/"},
        {"idempotency_key": "has space"},
        {"idempotency_key": "k" * 201},
        {"priority": "urgent"},
        {"colour": "red"},
    ],
)
def test_what_the_schema_refuses_the_model_refuses(change):
    request = {**SCHEMA["examples"][0], **change}
    assert list(VALIDATOR.iter_errors(request))
    with pytest.raises(InvalidRequest):
        parse_request(request)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (new_job_id(), True),
        ("0" * 32, True),
        ("A" * 32, False),
        ("0" * 31, False),
        ("0" * 32 + "\n", False),
        ("g" * 32, False),
        (12, False),
        (None, False),
    ],
)
def test_job_ids_are_32_lowercase_hex(value, valid):
    assert is_job_id(value) is valid


@pytest.mark.parametrize(
    ("images", "problems"),
    [
        (["https://a/1.png", "s3://bucket/k.png", "data:image/png;base64,AA=="], []),
        (["/tmp/a.png"], ["images[0]: local path '/tmp/a.png' is not accepted from a message"]),
        (["https://a/1.png", "file:///x.png"], ["images[1]: local path 'file:///x.png'"]),
    ],
)
def test_messages_refuse_local_paths(images, problems):
    found = remote_problems(parse_request({"prompt": "p", "images": images}))
    assert len(found) == len(problems)
    for message, start in zip(found, problems, strict=True):
        assert message.startswith(start)
        assert "a worker reads no local files" in message
