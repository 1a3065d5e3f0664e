"""The task list's query rules without a server: window, zone, filters and paging."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from wanedit.sandbox.answers import format_time, parse_list_time
from wanedit.sandbox.errors import ApiError
from wanedit.sandbox.listing import DAY, ListQuery, page, parse_query, window

BEIJING = timezone(timedelta(hours=8))


def at(text: str, zone: timezone = BEIJING) -> int:
    """``YYYYMMDDhhmmss`` in ``zone`` as unix seconds, computed independently of the sandbox."""
    return int(datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=zone).timestamp())


NOW = datetime(2025, 10, 23, 16, 18, 16, 500000, tzinfo=BEIJING).timestamp()


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # No times: the last 24 h, up to the current second.
        (None, None, (at("20251022161816"), at("20251023161816"))),
        # Only end_time: the 24 h before it.
        (None, "20251023120000", (at("20251022120000"), at("20251023120000"))),
        # Only start_time: the 24 h after it.
        ("20251022080000", None, (at("20251022080000"), at("20251023080000"))),
        ("20251023100000", "20251023110000", (at("20251023100000"), at("20251023110000"))),
        # Exactly 24 h is allowed.
        ("20251022100000", "20251023100000", (at("20251022100000"), at("20251023100000"))),
        ("20251023100000", "20251023100000", (at("20251023100000"), at("20251023100000"))),
    ],
)
def test_window(start: str | None, end: str | None, expected: tuple[int, int]) -> None:
    assert window(start, end, NOW, BEIJING) == expected


@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        ("20251022100000", "20251023100001", "24 h"),
        ("20251020000000", "20251023000000", "24 h"),
        ("20251023100000", "20251023095959", "before"),
        ("2025-10-23", None, "YYYYMMDDhhmmss"),
        (None, "20251023", "YYYYMMDDhhmmss"),
        ("20251332000000", None, "YYYYMMDDhhmmss"),
        ("2025102310000", None, "YYYYMMDDhhmmss"),
        ("+2025102310000", None, "YYYYMMDDhhmmss"),
    ],
)
def test_bad_windows_are_refused(start: str | None, end: str | None, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        window(start, end, NOW, BEIJING)
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("hours", "text", "utc"),
    [
        (8.0, "20251023160000", datetime(2025, 10, 23, 8, 0, tzinfo=UTC)),
        (0.0, "20251023160000", datetime(2025, 10, 23, 16, 0, tzinfo=UTC)),
        (5.5, "20251023160000", datetime(2025, 10, 23, 10, 30, tzinfo=UTC)),
        (-5.0, "20251023160000", datetime(2025, 10, 23, 21, 0, tzinfo=UTC)),
    ],
)
def test_filter_times_are_read_in_the_provider_zone(hours: float, text: str, utc: datetime) -> None:
    zone = timezone(timedelta(hours=hours))
    assert parse_list_time("start_time", text, zone) == utc.timestamp()


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (8.0, "2023-11-15 06:13:20.250"),
        (0.0, "2023-11-14 22:13:20.250"),
        (5.5, "2023-11-15 03:43:20.250"),
    ],
)
def test_time_strings_are_written_in_the_provider_zone(hours: float, expected: str) -> None:
    # 1_700_000_000 is 2023-11-14 22:13:20 UTC.
    assert format_time(1_700_000_000.25, timezone(timedelta(hours=hours))) == expected


def test_the_window_is_inclusive_at_the_whole_second() -> None:
    query = ListQuery(100, 200, {})
    inside = [100.0, 150.5, 200.0, 200.999]
    outside = [99.999, 201.0, 1e9]
    assert [query.in_window(t) for t in inside + outside] == [True] * 4 + [False] * 3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, (1, 10, {})),
        ({"page_no": "3", "page_size": "100"}, (3, 100, {})),
        ({"page_no": "", "page_size": ""}, (1, 10, {})),
        ({"status": "UNKNOWN"}, (1, 10, {"status": "UNKNOWN"})),
        (
            {"status": "CANCELED", "model_name": "m"},
            (1, 10, {"status": "CANCELED", "model_name": "m"}),
        ),
        (
            {"task_id": "t1", "api_key_id": "7", "region": "r"},
            (1, 10, {"task_id": "t1", "api_key_id": "7", "region": "r"}),
        ),
        ({"unknown_param": "x", "status": ""}, (1, 10, {})),
    ],
)
def test_query_arguments(args: dict[str, str], expected: tuple[int, int, dict[str, str]]) -> None:
    query = parse_query(args, NOW, BEIJING)
    assert (query.page_no, query.page_size, dict(query.filters)) == expected
    assert query.last_second - query.first_second == DAY


@pytest.mark.parametrize(
    "args",
    [
        {"page_size": "101"},
        {"page_size": "0"},
        {"page_no": "0"},
        {"page_no": "-1"},
        {"page_size": "ten"},
        {"status": "DONE"},
        {"status": "succeeded"},
    ],
)
def test_bad_query_arguments_are_refused(args: dict[str, str]) -> None:
    with pytest.raises(ApiError) as caught:
        parse_query(args, NOW, BEIJING)
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")


@pytest.mark.parametrize(
    ("total", "page_no", "page_size", "total_page", "ids"),
    [
        (25, 1, 10, 3, list(range(0, 10))),
        (25, 3, 10, 3, list(range(20, 25))),
        (25, 4, 10, 3, []),
        (25, 1, 100, 1, list(range(25))),
        (20, 2, 10, 2, list(range(10, 20))),
        (1, 1, 1, 1, [0]),
        (0, 1, 10, 0, []),
    ],
)
def test_paging(total: int, page_no: int, page_size: int, total_page: int, ids: list[int]) -> None:
    rows = [{"task_id": i} for i in range(total)]
    answer = page(rows, ListQuery(0, DAY, {}, page_no, page_size))
    assert list(answer) == ["total", "total_page", "page_no", "page_size", "data"]
    assert (answer["total"], answer["total_page"]) == (total, total_page)
    assert (answer["page_no"], answer["page_size"]) == (page_no, page_size)
    assert [row["task_id"] for row in answer["data"]] == ids


def test_row_filters_match_exactly() -> None:
    query = ListQuery(0, DAY, {"status": "RUNNING", "model_name": "m"})
    assert query.matches({"status": "RUNNING", "model_name": "m", "task_id": "x"})
    assert not query.matches({"status": "RUNNING", "model_name": "m2"})
    assert not query.matches({"status": "PENDING", "model_name": "m"})
