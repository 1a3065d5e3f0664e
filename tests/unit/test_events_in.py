"""Storage event notifications: parsing, rules, the loop guard and dedupe keys."""

from __future__ import annotations

import json

import pytest

from wanedit.config.listen import ListenRule
from wanedit.errors import InvalidEvent
from wanedit.producers.events_in import ObjectEvent, parse_events, plan_edits

# AWS's documented sample event (S3 User Guide, "Event message structure"), verbatim.
AWS_SAMPLE = """{
   "Records":[
      {
         "eventVersion":"2.1",
         "eventSource":"aws:s3",
         "awsRegion":"us-west-2",
         "eventTime":"1970-01-01T00:00:00.000Z",
         "eventName":"ObjectCreated:Put",
         "userIdentity":{
            "principalId":"AIDAJDPLRKLG7UEXAMPLE"
         },
         "requestParameters":{
            "sourceIPAddress":"127.0.0.1"
         },
         "responseElements":{
            "x-amz-request-id":"C3D13FE58DE4C810",
            "x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
         },
         "s3":{
            "s3SchemaVersion":"1.0",
            "configurationId":"testConfigRule",
            "bucket":{
               "name":"amzn-s3-demo-bucket",
               "ownerIdentity":{
                  "principalId":"A3NL1KOZZKExample"
               },
               "arn":"arn:aws:s3:::amzn-s3-demo-bucket"
            },
            "object":{
               "key":"HappyFace.jpg",
               "size":1024,
               "eTag":"d41d8cd98f00b204e9800998ecf8427e",
               "versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko",
               "sequencer":"0055AED6DCD90281E5"
            }
         }
      }
   ]
}"""

AWS_TEST_EVENT = (
    '{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2014-10-13T15:57:02.089Z",'
    '"Bucket":"amzn-s3-demo-bucket","RequestId":"5582815E1AEA5ADF",'
    '"HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}'
)


def record(key: str, name: str = "s3:ObjectCreated:Put", bucket: str = "photos", **obj):
    return {"eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": key, **obj}}}


def minio_access(*records: dict) -> str:
    return json.dumps({"EventTime": "2026-01-01T00:00:00Z", "Event": list(records)})


RULE = ListenRule.model_validate(
    {
        "bucket": "photos",
        "prefix": "in/",
        "suffix": ".png",
        "prompt": "Add a hat",
        "n": 2,
        "output": "s3://photos/edited/",
    }
)


def test_the_documented_aws_sample_event():
    assert parse_events(AWS_SAMPLE) == [
        ObjectEvent(
            bucket="amzn-s3-demo-bucket",
            key="HappyFace.jpg",
            version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko",
            etag="d41d8cd98f00b204e9800998ecf8427e",
            sequencer="0055AED6DCD90281E5",
            name="ObjectCreated:Put",
        )
    ]


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        (AWS_TEST_EVENT, []),
        (json.dumps({"Records": [record("in/a.png", "ObjectCreated:Put")]}), ["in/a.png"]),
        (json.dumps({"Records": [record("in/a.png", "s3:ObjectCreated:Copy")]}), ["in/a.png"]),
        (json.dumps({"Records": [record("in/a.png", "ObjectRemoved:Delete")]}), []),
        (json.dumps({"Records": [record("in/my+photo%281%29.png")]}), ["in/my photo(1).png"]),
        (json.dumps({"Records": [record("in%2Fa%2Bb.png")]}), ["in/a+b.png"]),
        (minio_access(record("in/a.png"), record("in/b.png")), ["in/a.png", "in/b.png"]),
        ("[" + minio_access(record("in/c.png")) + "]", ["in/c.png"]),
        # A MinIO webhook body: EventName and Key beside the same records.
        (
            json.dumps(
                {
                    "EventName": "s3:ObjectCreated:Put",
                    "Key": "photos/in/d.png",
                    "Records": [record("in/d.png")],
                }
            ),
            ["in/d.png"],
        ),
    ],
)
def test_parse_events_reads_every_envelope(body, keys):
    assert [event.key for event in parse_events(body)] == keys


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "body: not JSON"),
        ('"a string"', "a JSON object was expected"),
        ("{}", "neither Records"),
        ('{"Records": {}}', "Records: must be a list"),
        ('{"Records": [{"eventName": "ObjectCreated:Put"}]}', "Records[0].s3: missing"),
        (json.dumps({"Records": [record("")]}), "Records[0].s3.object.key: missing"),
        (json.dumps({"Records": [record("a", bucket="")]}), "s3.bucket.name: missing"),
    ],
)
def test_malformed_notifications_name_the_problem(body, problem):
    with pytest.raises(InvalidEvent, match=problem.replace("[", r"\[").replace(".", r"\.")):
        parse_events(body)


def created(s3: object) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": s3}]})


def obj(**fields: object) -> str:
    return created({"bucket": {"name": "p"}, "object": {"key": "a", **fields}})


AT = "Records[0].s3"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"Records": 5}', "Records: must be a list of records, not a number"),
        ('{"Event": "x"}', "Event: must be a list of records, not a string"),
        ("[5]", "body[0]: must be an object, not a number"),
        ("[[{}]]", "body[0]: must be an object, not a list"),
        ('{"Records": [5]}', "Records[0]: must be an object, not a number"),
        ('{"Records": [{"eventName": 5}]}', "Records[0].eventName: must be a string, not a number"),
        (created("photos"), "Records[0].s3: must be an object, not a string"),
        (
            created({"bucket": "p", "object": {"key": "a"}}),
            f"{AT}.bucket: must be an object, not a string",
        ),
        (
            created({"bucket": {"name": 5}, "object": {"key": "a"}}),
            f"{AT}.bucket.name: must be a string, not a number",
        ),
        (
            created({"bucket": {"name": "p"}, "object": 7}),
            f"{AT}.object: must be an object, not a number",
        ),
        (obj(key=["a"]), f"{AT}.object.key: must be a string, not a list"),
        (obj(eTag=5), f"{AT}.object.eTag: must be a string, not a number"),
        (obj(versionId=True), f"{AT}.object.versionId: must be a string, not true or false"),
        (obj(sequencer={}), f"{AT}.object.sequencer: must be a string, not an object"),
        (obj(key="a\udc80"), f"{AT}.object.key: is not valid UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "body: JSON nested too deeply to read"),
        ('{"Records": ' + "[" * 100_000 + "]" * 100_000 + "}", "body: JSON nested too deeply"),
        (b'{"Records": [{"eventName": "\xff"}]}', "body: not JSON"),
    ],
)
def test_a_malformed_record_is_refused_by_the_field_it_breaks(body, problem):
    with pytest.raises(InvalidEvent) as refused:
        parse_events(body)
    assert str(refused.value).startswith(problem)


@pytest.mark.parametrize(
    ("bucket", "key", "edits"),
    [
        ("photos", "in/a.png", 1),
        ("photos", "in/deep/a.png", 1),
        ("photos", "in/a.jpg", 0),  # suffix
        ("photos", "other/a.png", 0),  # prefix
        ("albums", "in/a.png", 0),  # bucket
        ("photos", "edited/in/a.png", 0),  # our own output
    ],
)
def test_rules_match_bucket_prefix_and_suffix(bucket, key, edits):
    assert len(plan_edits([ObjectEvent(bucket, key, etag="e")], [RULE])) == edits


def test_an_edit_is_the_rule_template_with_the_object_as_image_1():
    (edit,) = plan_edits([ObjectEvent("photos", "in/a.png", etag="e1")], [RULE])
    assert edit.request == {
        "prompt": "Add a hat",
        "n": 2,
        "images": ["s3://photos/in/a.png"],
        "output": "s3://photos/edited/",
        "idempotency_key": edit.request["idempotency_key"],
    }
    assert edit.request["idempotency_key"].startswith("s3-event-")


def test_objects_under_any_rules_output_never_start_an_edit():
    # Rule B watches everything in the bucket; rule A writes there: A's outputs are ignored.
    watch_all = ListenRule.model_validate(
        {"bucket": "photos", "prompt": "p", "output": "s3://other-bucket/out/"}
    )
    events = [ObjectEvent("photos", "edited/x.png", etag="e")]
    assert plan_edits(events, [RULE, watch_all]) == []
    assert len(plan_edits([ObjectEvent("photos", "new.png", etag="e")], [RULE, watch_all])) == 1


def _key(**fields) -> str:
    event = ObjectEvent(**{"bucket": "photos", "key": "in/a.png", **fields})
    return event.idempotency_key(RULE)


def test_the_same_event_twice_gives_the_same_idempotency_key():
    first = _key(version_id="v1", etag="e", sequencer="01")
    assert first == _key(version_id="v1", etag="e", sequencer="01")
    assert len(first) <= 200
    # A new version, new content, or a later write of the same content is a new edit.
    assert first != _key(version_id="v2", etag="e", sequencer="01")
    assert _key(etag="e1") != _key(etag="e2")
    assert _key(etag="e", sequencer="01") != _key(etag="e", sequencer="02")


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"bucket": "photos", "output": "s3://photos/o/"}, "prompt: Field required"),
        (
            {"bucket": "photos", "prompt": "p", "output": "s3://photos/o/", "n": 9},
            "n: 9 is outside",
        ),
        ({"bucket": "photos", "prompt": "p"}, "output"),
        (
            {"bucket": "photos", "prompt": "p", "output": "s3://photos/o/", "idempotency_key": "k"},
            "set by the listener",
        ),
        (
            {"bucket": "photos", "prompt": "p", "output": "s3://photos/o/", "colour": "red"},
            "colour: is not a field",
        ),
    ],
)
def test_rules_are_checked_as_edit_requests(rule, problem):
    with pytest.raises(ValueError, match=problem):
        ListenRule.model_validate(rule)


def test_a_bad_rule_in_the_environment_fails_at_start_up(monkeypatch):
    from wanedit.config.settings import load_settings
    from wanedit.errors import ConfigError

    monkeypatch.setenv(
        "WANEDIT_LISTEN_RULES", '[{"bucket": "photos", "prompt": "", "output": "s3://photos/o/"}]'
    )
    with pytest.raises(
        ConfigError, match=r"WANEDIT_LISTEN_RULES\[0\]: .*prompt: must not be empty"
    ):
        load_settings()
    monkeypatch.setenv("WANEDIT_LISTEN_RULES", json.dumps([RULE.model_dump()]))
    assert load_settings().listen_rules == [RULE]
