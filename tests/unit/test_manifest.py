"""Manifest parsing: JSONL and CSV lines to request fields, bad lines reported, never held whole."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator

import pytest

from wanedit.intake.manifest import (
    Line,
    batch_id_for,
    batch_of,
    idempotency_key,
    manifest_format,
    parse_csv,
    parse_jsonl,
)
from wanedit.request import parse_request


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"prompt": "p", "images": ["s3://bkt/a.png"]}',
            {"prompt": "p", "images": ["s3://bkt/a.png"]},
        ),
        ('  {"prompt": "p", "images": [], "n": 2}  ', {"prompt": "p", "images": [], "n": 2}),
    ],
)
def test_jsonl_lines_are_request_fields(text, expected):
    [line] = parse_jsonl([text])
    assert (line.number, line.fields, line.error) == (1, expected, None)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{oops", "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("[1, 2]", "must be a JSON object, not list"),
        ('"prompt"', "must be a JSON object, not str"),
    ],
)
def test_bad_jsonl_lines_are_reported_with_their_number(text, error):
    lines = list(parse_jsonl(['{"prompt": "a", "images": ["x.png"]}', "", text]))
    assert [line.number for line in lines] == [1, 3]
    assert lines[1].fields is None
    assert lines[1].error == error


CSV_HEADER = "prompt,images,n,seed,size,watermark,metadata\n"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "Add a hat,s3://bkt/a.png|s3://bkt/b.png,2,7,1280*1280,true,\n",
            {
                "prompt": "Add a hat",
                "images": ["s3://bkt/a.png", "s3://bkt/b.png"],
                "n": 2,
                "seed": 7,
                "size": "1280*1280",
                "watermark": True,
            },
        ),
        (
            '"Hat, red","[""s3://bkt/a.png""]",,,,,"{""k"": 1}"\n',
            {"prompt": "Hat, red", "images": ["s3://bkt/a.png"], "metadata": {"k": 1}},
        ),
    ],
)
def test_csv_rows_are_typed_request_fields(row, expected):
    [line] = parse_csv([CSV_HEADER, row])
    assert line.error is None
    assert line.fields == expected
    assert line.number == 2
    parse_request(line.fields)  # the model accepts what the parser made


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("p,s3://bkt/a.png,two,,,,\n", "n: 'two' is not a whole number"),
        ("p,s3://bkt/a.png,,,,maybe,\n", "watermark: 'maybe' is not true or false"),
        (
            "p,s3://bkt/a.png,,,,,{bad\n",
            "metadata: not valid JSON (Expecting property name enclosed in double quotes at "
            "column 2)",
        ),
        ("p,s3://bkt/a.png,1,2,3,4,5,6\n", "8 cells for 7 header fields"),
    ],
)
def test_bad_csv_rows_are_reported_and_the_rest_go_on(row, error):
    lines = list(parse_csv([CSV_HEADER, row, "q,s3://bkt/c.png,,,,,\n"]))
    assert lines[0].number == 2
    assert lines[0].error == error
    assert lines[1].fields == {"prompt": "q", "images": ["s3://bkt/c.png"]}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("s3://bkt/night.csv", "csv"), ("m.CSV", "csv"), ("m.jsonl", "jsonl"), ("m.txt", "jsonl")],
)
def test_format_follows_the_name(name, fmt):
    assert manifest_format(name) == fmt


def test_keys_depend_on_place_content_and_line():
    first = batch_id_for("s3://bkt/m.jsonl", "abc")
    assert first == batch_id_for("s3://bkt/m.jsonl", "abc")
    assert first != batch_id_for("s3://bkt/other.jsonl", "abc")
    assert first != batch_id_for("s3://bkt/m.jsonl", "abd")
    line_a, line_b = parse_jsonl(['{"prompt": "a"}', '{"prompt": "a"}'])
    key_a, key_b = idempotency_key(first, line_a), idempotency_key(first, line_b)
    assert key_a != key_b
    assert len(key_a) <= 200 and " " not in key_a


def _generated(count: int, csv_header: bool = False) -> Iterator[str]:
    if csv_header:
        yield CSV_HEADER
    for number in range(count):
        if csv_header:
            yield f"Edit {number},s3://bucket/in/{number}.png|s3://bucket/in/x.png,1,{number},,,\n"
        else:
            yield json.dumps({"prompt": f"Edit {number}", "images": [f"s3://bkt/in/{number}.png"]})


@pytest.mark.parametrize(("parse", "csv_header"), [(parse_jsonl, False), (parse_csv, True)])
def test_a_100000_line_manifest_is_streamed_not_held(parse, csv_header):
    tracemalloc.start()
    try:
        count = 0
        for line in parse(_generated(100_000, csv_header)):
            assert line.error is None
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    # Held whole, 100,000 parsed lines take tens of MB; streamed, a few lines at a time.
    assert peak < 1_000_000, peak


def test_parsing_is_lazy():
    lines = parse_jsonl(_generated(10**12))  # would never end if read whole
    assert next(lines).number == 1


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '{"prompt": "p", "metadata": {"a": ' + DEEP + "}}",
            "JSON nested 100002 levels deep is over the limit of 64 levels",
        ),
        ('{"seed": 1' + "0" * 5000 + "}", "not valid JSON (Exceeds the limit (4300 digits)"),
        ('{"prompt": "caf\udce9"}', "not valid UTF-8 (byte 0xe9 at column 16)"),
    ],
)
def test_a_jsonl_line_the_parser_cannot_take_is_reported_and_the_rest_go_on(text, error):
    good = '{"prompt": "a", "images": ["s3://bkt/a.png"]}'
    lines = list(parse_jsonl([good, text, good]))
    assert [line.number for line in lines] == [1, 2, 3]
    assert lines[1].fields is None
    assert lines[1].error is not None and lines[1].error.startswith(error)
    assert lines[0].fields == lines[2].fields == json.loads(good)


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps({"prompt": "[" * 500, "images": ["s3://bkt/a.png"]})
    [line] = parse_jsonl([text])
    assert line.error is None
    assert line.fields == json.loads(text)


@pytest.mark.parametrize(
    ("row", "error"),
    [
        (
            "p,s3://bkt/a.png,,,," + "x" * 200_000 + ",\n",
            "watermark: a cell of more than 131072 characters is over the CSV limit of 131072",
        ),
        (
            'p,s3://bkt/a.png,,,,,"' + "y" * 140_000 + '"\n',
            "metadata: a cell of more than 131072 characters is over the CSV limit of 131072",
        ),
        (
            'p,s3://bkt/a.png,,,,,"' + "[" * 5000 + "]" * 5000 + '"\n',
            "metadata: JSON nested 5000 levels deep is over the limit of 64 levels",
        ),
        (f"p,{'[' * 70}{']' * 70},,,,,\n", "images: JSON nested 70 levels deep is over the limit"),
    ],
)
def test_a_csv_cell_the_reader_cannot_take_is_reported_and_the_rest_go_on(row, error):
    lines = list(parse_csv([CSV_HEADER, row, "q,s3://bkt/c.png,,,,,\n"]))
    assert [line.number for line in lines] == [2, 3]
    assert lines[0].fields is None
    assert lines[0].error is not None and lines[0].error.startswith(error)
    assert lines[1].fields == {"prompt": "q", "images": ["s3://bkt/c.png"]}


def test_a_csv_header_the_reader_cannot_take_is_reported():
    [line] = parse_csv(["prompt," + "x" * 200_000 + "\n", "p,s3://bkt/a.png\n"])
    assert (line.number, line.fields) == (1, None)
    assert line.error == (
        "header: cell 2: a cell of more than 131072 characters is over the CSV limit of 131072"
    )


@pytest.mark.parametrize(("parse", "csv_header"), [(parse_jsonl, False), (parse_csv, True)])
def test_lines_up_to_the_last_one_handled_are_skipped(parse, csv_header):
    lines = list(parse(_generated(10, csv_header), after=4 + csv_header))
    assert [line.number for line in lines] == [n + csv_header for n in range(5, 11)]
    assert lines[0].fields is not None and lines[0].fields["prompt"] == "Edit 4"


@pytest.mark.parametrize(
    ("batch_id", "number"), [("0123456789abcdef", 1), ("nightly-20261125T0230Z", 123456)]
)
def test_a_batch_jobs_idempotency_key_names_its_batch(batch_id, number):
    [line] = parse_jsonl(['{"prompt": "a"}'])
    line = Line(number, line.digest, fields=line.fields)
    assert batch_of(idempotency_key(batch_id, line)) == batch_id


@pytest.mark.parametrize(
    "key", ["", "order-17", "batch-", "batch-x-y", "batch--1-abc", "batch-b-x-1"]
)
def test_other_idempotency_keys_name_no_batch(key):
    assert batch_of(key) is None
