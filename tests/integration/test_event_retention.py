"""A reader of the event stream learns when entries it never read were trimmed."""

from __future__ import annotations

import redis
from click.testing import CliRunner

from wanedit.producers.cli import main as cli
from wanedit.store.events import read_events, trimmed_after


def _fill(client: redis.Redis, stream: str, count: int, maxlen: int) -> list[str]:
    # Exact trimming (no `~`) so the test knows which entries are gone.
    return [
        str(client.xadd(stream, {"data": f'{{"n": {n}}}'}, maxlen=maxlen, approximate=False))
        for n in range(count)
    ]


def test_a_reader_that_fell_behind_the_trim_is_told(redis_url: str, run_id: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stream = f"retention-{run_id}"
    ids = _fill(client, stream, 10, maxlen=4)
    # The reader last saw entry 2; entries 3..5 were trimmed before it came back, and 6 is the
    # oldest entry the stream still holds.
    assert trimmed_after(client, stream, ids[2]) == ids[6]
    assert trimmed_after(client, stream, "0-0") == ids[6]
    # A reader that saw an entry the stream still holds missed nothing.
    assert trimmed_after(client, stream, ids[6]) is None
    assert trimmed_after(client, stream, ids[9]) is None
    assert [event["n"] for _, event in read_events(client, stream, start=ids[6])] == [7, 8, 9]


def test_a_stream_never_trimmed_reports_no_gap(redis_url: str, run_id: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stream = f"retention-full-{run_id}"
    ids = _fill(client, stream, 3, maxlen=10)
    assert trimmed_after(client, stream, "0-0") is None
    assert trimmed_after(client, stream, ids[0]) is None


def test_no_stream_means_nothing_trimmed(redis_url: str, run_id: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert trimmed_after(client, f"absent-{run_id}", "0-0") is None


def test_events_after_warns_about_a_gap_and_reads_on(redis_url: str, run_id: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stream = f"retention-cli-{run_id}"
    ids = _fill(client, stream, 6, maxlen=3)
    env = {"WANEDIT_REDIS_URL": redis_url, "WANEDIT_EVENTS_STREAM": stream}
    from wanedit.config.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["events", "--after", ids[0], "--json"], env=env)
        again = CliRunner().invoke(cli, ["events", "--after", ids[3], "--json"], env=env)
        bad = CliRunner().invoke(cli, ["events", "--after", "yesterday"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"no longer holds {ids[0]}: events after it and before {ids[3]}" in result.stderr
    assert [line for line in result.stdout.splitlines() if line] and ids[3] in result.stdout
    assert again.exit_code == 0 and again.stderr == ""
    assert ids[4] in again.stdout and ids[3] not in again.stdout
    assert bad.exit_code == 2 and "--after: 'yesterday' is not a stream entry id" in bad.stderr
