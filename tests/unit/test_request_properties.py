"""Properties of the enqueue contract: every valid request parses, and every request broken in
one field is refused with InvalidRequest naming that field, its problem and the limit."""

from __future__ import annotations

import math
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wanedit import limits
from wanedit.errors import InvalidRequest
from wanedit.request import EditRequest, parse_request

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- valid parts -------------------------------------------------------------------------------

_LOWER = string.ascii_lowercase + string.digits
buckets = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,20}[a-z0-9]\Z")
key_parts = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=12)
keys = st.lists(key_parts, min_size=1, max_size=4).map("/".join)

urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}.png",
    st.sampled_from(["https", "http"]),
    st.text(alphabet=_LOWER, min_size=1, max_size=20).map(lambda h: f"{h}.example.com"),
    keys,
)
s3_objects = st.builds(lambda bucket, key: f"s3://{bucket}/{key}.png", buckets, keys)
data_uris = st.builds(
    lambda payload: f"data:image/png;base64,{payload}",
    st.text(alphabet=string.ascii_letters + string.digits + "+/=", max_size=40),
)
local_paths = st.builds(
    lambda parts, absolute: ("/" if absolute else "") + "/".join(parts) + ".png",
    st.lists(key_parts, min_size=1, max_size=3),
    st.booleans(),
)
sources = st.one_of(urls, s3_objects, data_uris, local_paths)


@st.composite
def sizes(draw: st.DrawFn) -> str:
    """W*H within the pixel range and the 1:4 to 4:1 aspect ratio."""
    width = draw(st.integers(384, 2560))
    low = max(math.ceil(limits.PIXELS_MIN / width), math.ceil(width / 4))
    high = min(limits.PIXELS_MAX // width, width * 4)
    return f"{width}*{draw(st.integers(low, high))}"


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
metadata = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
prompts = st.text(min_size=1, max_size=limits.PROMPT_MAX).filter(lambda text: text.strip())

OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "negative_prompt": st.none() | st.text(max_size=limits.NEGATIVE_PROMPT_MAX),
    "n": st.integers(limits.N_MIN, limits.N_MAX),
    "size": st.none() | sizes(),
    "prompt_extend": st.booleans(),
    "watermark": st.booleans(),
    "seed": st.none() | st.integers(0, limits.SEED_MAX),
    "output": st.none() | st.builds(lambda b, k: f"s3://{b}/{k}", buckets, keys),
    "metadata": st.none() | metadata,
    "idempotency_key": st.none()
    | st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], min_size=1, max_size=200),
    "priority": st.sampled_from(["interactive", "batch"]),
}

valid_requests = st.fixed_dictionaries(
    {"prompt": prompts, "images": st.lists(sources, min_size=1, max_size=limits.IMAGES_MAX)},
    optional=OPTIONAL,
)

# --- one field broken at a time: (field, bad value, a fragment the message must hold) ----------

not_a_string = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
)
not_an_int = st.one_of(st.booleans(), st.floats(allow_nan=False), st.text(max_size=5), st.none())


def broken(field: str, values: st.SearchStrategy[Any], fragment: str = "") -> st.SearchStrategy:
    return values.map(lambda value: (field, value, fragment))


@st.composite
def bad_sizes(draw: st.DrawFn) -> tuple[str, str, str]:
    kind = draw(st.sampled_from(["shape", "pixels", "aspect", "zero", "digits"]))
    if kind == "shape":
        text = draw(st.text(max_size=15).filter(lambda t: not _looks_like_size(t)))
        return text, "must look like W*H"
    if kind == "pixels":
        width, height = draw(
            st.tuples(st.integers(1, 99_999), st.integers(1, 99_999)).filter(
                lambda pair: not limits.PIXELS_MIN <= pair[0] * pair[1] <= limits.PIXELS_MAX
            )
        )
        return f"{width}*{height}", "768*768"
    if kind == "aspect":
        side = draw(st.integers(385, 639))
        long_side = draw(st.integers(side * 4 + 1, limits.PIXELS_MAX // side))
        pair = (side, long_side) if draw(st.booleans()) else (long_side, side)
        return f"{pair[0]}*{pair[1]}", "1:4 to 4:1"
    if kind == "zero":
        return draw(st.sampled_from(["0*1024", "1024*0", "0*0", "00*1"])), "zero side"
    # Digits of other scripts, and a trailing newline, are not W*H for the provider.
    return draw(
        st.sampled_from(
            [
                "\u0661\u0660\u0662\u0664*\u0661\u0660\u0662\u0664",
                "1024*1024\n",
                "\uff11\uff10\uff12\uff14*1024",
                " 1024*1024",
            ]
        )
    ), "W*H"


def _looks_like_size(text: str) -> bool:
    left, star, right = text.partition("*")
    return bool(star) and left.isdigit() and right.isdigit()


bad_size = bad_sizes().map(lambda pair: ("size", pair[0], pair[1]))

bad_image_sources = st.one_of(
    st.just(""),
    st.builds(lambda s: f"{s}://host/a.png", st.sampled_from(["ftp", "gopher", "HTTPS", "sftp"])),
    st.sampled_from(["https://", "http:///a.png", "https://[::1/a.png"]),
    st.sampled_from(["s3://", "s3://bucket/", "s3://B/x.png", "s3://ab/x.png", "s3://bucket//x"]),
    st.builds(lambda b: f"s3://{b}/../x.png", buckets),
    st.just("https://example.com/" + "x" * 4096),
    st.builds(lambda p: f"{p}\x00.png", key_parts),
)


@st.composite
def bad_images(draw: st.DrawFn) -> tuple[str, Any, str]:
    kind = draw(st.sampled_from(["count", "source", "type"]))
    if kind == "count":
        count = draw(st.sampled_from([0, 4, 5, 10]))
        return "images", draw(st.lists(sources, min_size=count, max_size=count)), "1 to 3"
    if kind == "type":
        return "images", draw(st.one_of(st.text(max_size=5), st.integers(), st.none())), ""
    good = draw(st.lists(sources, min_size=0, max_size=2))
    index = draw(st.integers(0, len(good)))
    good.insert(index, draw(bad_image_sources))
    return f"images[{index}]", good, ""


too_long_prompt = st.integers(limits.PROMPT_MAX + 1, limits.PROMPT_MAX + 500).map(lambda k: "p" * k)
metadata_too_big = st.integers(limits.METADATA_BYTES_MAX, limits.METADATA_BYTES_MAX + 2000).map(
    lambda k: {"blob": "x" * k}
)
metadata_not_json = st.sampled_from(
    [{"a": object()}, {"a": {1, 2}}, {"a": float("nan")}, {"a": float("inf")}, {"a": b"bytes"}]
)
field_names = set(EditRequest.model_fields)

invalid_changes = st.one_of(
    broken("prompt", st.sampled_from(["", " ", "\n\t", "\u2003"]), "must not be empty"),
    broken("prompt", too_long_prompt, str(limits.PROMPT_MAX)),
    broken("prompt", not_a_string | st.none()),
    broken(
        "negative_prompt",
        st.integers(limits.NEGATIVE_PROMPT_MAX + 1, 900).map(lambda k: "n" * k),
        str(limits.NEGATIVE_PROMPT_MAX),
    ),
    broken("negative_prompt", not_a_string),
    bad_images(),
    broken(
        "n",
        st.integers(max_value=limits.N_MIN - 1) | st.integers(min_value=limits.N_MAX + 1),
        "1 to 4",
    ),
    broken("n", not_an_int),
    bad_size,
    broken("size", not_a_string),
    broken(
        "seed",
        st.integers(max_value=-1) | st.integers(min_value=limits.SEED_MAX + 1),
        str(limits.SEED_MAX),
    ),
    broken("seed", st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5)),
    broken("prompt_extend", st.integers() | st.text(max_size=5) | st.none()),
    broken("watermark", st.integers() | st.text(max_size=5) | st.none()),
    broken("output", st.text(max_size=30).filter(lambda t: not t.startswith("s3://")), "s3://"),
    broken(
        "output",
        st.sampled_from(["s3://", "s3://UPPER/x", "s3://a/", "s3://bucket/../x", "s3://bucket//x"]),
    ),
    broken("metadata", metadata_too_big, str(limits.METADATA_BYTES_MAX)),
    broken("metadata", metadata_not_json, "JSON"),
    broken("metadata", st.lists(st.integers(), max_size=2) | st.text(max_size=5) | st.integers()),
    broken("idempotency_key", st.just(""), str(limits.IDEMPOTENCY_KEY_MAX)),
    broken(
        "idempotency_key",
        st.integers(limits.IDEMPOTENCY_KEY_MAX + 1, 400).map(lambda k: "k" * k),
        str(limits.IDEMPOTENCY_KEY_MAX),
    ),
    broken(
        "idempotency_key",
        st.sampled_from(["has space", "tab\there", "naïve", "end\n", "\x7f", "ключ"]),
        "printable ASCII",
    ),
    broken(
        "priority",
        st.text(max_size=12).filter(lambda t: t not in ("interactive", "batch")),
        "interactive",
    ),
    st.builds(
        lambda name, value: (name, value, "is not a field of an edit request"),
        st.text(min_size=1, max_size=15).filter(
            lambda name: name not in field_names and "[" not in name
        ),
        json_leaves,
    ),
)


def names(problem: str, field: str) -> bool:
    """The problem line starts with the field: `n: ...`, `images[1]: ...`, `metadata.a: ...`."""
    return problem.startswith(field) and problem[len(field) : len(field) + 1] in (":", "[", ".")


# --- properties ---------------------------------------------------------------------------------


@FAST
@given(valid_requests)
def test_every_valid_request_parses_and_keeps_its_values(data):
    request = parse_request(data)
    assert request.prompt == data["prompt"]
    assert request.images == data["images"]
    assert request.n == data.get("n", 1)
    payload = request.provider_input(request.images)
    assert payload["parameters"]["n"] == request.n


@FAST
@given(valid_requests, invalid_changes)
def test_one_bad_field_is_refused_naming_the_field_and_the_limit(data, change):
    field, value, fragment = change
    top = field.partition("[")[0]
    request = {**data, top: value}
    try:
        parse_request(request)
    except InvalidRequest as exc:
        assert exc.problems, "an InvalidRequest must say what is wrong"
        assert all(names(problem, top) for problem in exc.problems), exc.problems
        assert any(names(problem, field) for problem in exc.problems), (field, exc.problems)
        assert fragment in str(exc), (fragment, exc.problems)
    else:
        raise AssertionError(f"{field}={value!r} was accepted")


@FAST
@given(valid_requests, invalid_changes, invalid_changes)
def test_every_problem_is_reported_at_once(data, first, second):
    tops = {change[0].partition("[")[0] for change in (first, second)}
    request = {**data}
    for field, value, _ in (first, second):
        request[field.partition("[")[0]] = value
    try:
        parse_request(request)
    except InvalidRequest as exc:
        reported = {top for top in tops if any(names(problem, top) for problem in exc.problems)}
        # Two changes to one field leave only the last; each field changed is named.
        assert reported == tops, exc.problems
    else:
        raise AssertionError(f"{request!r} was accepted")


anything = st.recursive(
    json_leaves | st.binary(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(sorted(field_names)) | st.text(max_size=8), anything, max_size=8
    )
)
def test_any_mapping_either_parses_or_raises_invalid_request(data):
    try:
        request = parse_request(data)
    except InvalidRequest as exc:
        assert exc.problems
        assert all(":" in problem for problem in exc.problems)
    else:
        assert isinstance(request, EditRequest)
