"""`wanedit top`'s screen, rendered from a snapshot of the counters and gauges."""

from __future__ import annotations

from wanedit.metrics import AccountLoad, Snapshot, counters_from, histograms_from, observe

NOW = 1_764_030_000.0  # 2025-11-25 00:20:00 UTC


def snapshot() -> Snapshot:
    raw: dict[str, float] = {
        "jobs_total|status=succeeded": 3,
        "jobs_total|status=failed": 2,
        "job_errors_total|code=DataInspectionFailed": 1,
        "job_errors_total|code=InternalError.Algo": 1,
        "provider_errors_total|code=DataInspectionFailed": 1,
        "provider_errors_total|code=InternalError.Algo": 1,
        "provider_errors_total|code=Throttling.RateQuota": 4,
        "images_stored_total": 4,
        "images_billed_total|account=sg": 4,
        "cost_total|account=sg|currency=CNY": 0.880708,
    }
    for name, values in {
        "task_duration_seconds": (1.2, 2.5, 4.0, 40.0),
        "completion_lag_seconds": (0.4, 0.6, 0.9, 1.7),
        "polls_per_job": (2, 2, 3, 1),
    }.items():
        for value in values:
            for field, amount in observe(name, value).items():
                raw[field] = raw.get(field, 0) + amount
    text = {name: str(value) for name, value in raw.items()}
    return Snapshot(
        counters=counters_from(text),
        histograms=histograms_from(text),
        accounts=[AccountLoad("sg", 2, 5), AccountLoad("bj", 6, 5)],
        queue_depth={"interactive": 7, "batch": 12},
        broker_queue=1,
    )


def test_the_screen_shows_every_number():
    # Today's cost comes from quota's accounts, not from the all-time cost_total counter.
    assert render_lines(snapshot(), {"CNY": 0.660531}) == [
        "wanedit top  2025-11-25 00:20:00 UTC",
        "",
        "account          in flight  free",
        "sg                     2/5     3",
        "bj                     6/5     0",
        "backlog          interactive 7  batch 12  (broker queue 1)",
        "",
        "jobs ended       succeeded 3  failed 2  canceled 0",
        "job errors       DataInspectionFailed 1  InternalError.Algo 1",
        "provider errors  Throttling.RateQuota 4  DataInspectionFailed 1  InternalError.Algo 1",
        "images           4 stored  4 billed",
        "cost today       0.66 CNY",
        "",
        "task duration    n=4  mean 11.9 s  p50 <= 3 s  p90 <= 45 s",
        "completion lag   n=4  mean 0.9 s  p50 <= 1 s  p90 <= 2 s",
        "polls per job    n=4  mean 2.0  p50 <= 2  p90 <= 3",
    ]


def test_an_empty_cluster_and_a_missing_redis():
    lines = render_lines(Snapshot(accounts=[AccountLoad("default", 0, 5)]))
    assert "jobs ended       succeeded 0  failed 0  canceled 0" in lines
    assert "provider errors  none" in lines
    assert "cost today       0" in lines
    assert "task duration    -" in lines
    from wanedit.producers.cli.top import render

    assert render(Snapshot(), NOW, redis_up=False).splitlines()[-1] == "Redis does not answer"


def render_lines(snap: Snapshot, cost_today: dict[str, float] | None = None) -> list[str]:
    from wanedit.producers.cli.top import render

    return render(snap, NOW, cost_today=cost_today).splitlines()


def test_todays_cost_is_summed_by_currency_from_the_quota_accounts():
    from wanedit.producers.cli.top import costs_today

    accounts = [
        {"name": "sg", "cost_today": 0.440354, "currency": "CNY"},
        {"name": "sg2", "cost_today": 0.220177, "currency": "CNY"},
        {"name": "us", "cost_today": 0.1, "currency": "USD"},
    ]
    assert costs_today(accounts) == {"CNY": 0.660531, "USD": 0.1}
    assert "cost today       0.66 CNY  0.10 USD" in render_lines(Snapshot(), costs_today(accounts))


def test_quota_accounts_are_a_table_in_plain_text():
    from wanedit.producers.cli.ops import quota_table
    from wanedit.producers.cli.top import plain

    account = {
        "in_flight": 2,
        "concurrency": 5,
        "submit_rate": 2.0,
        "query_rate": 20.0,
        "images_today": 12,
        "cost_today": 2.642124,
        "currency": "CNY",
    }
    # A name is shown as it is, never read as rich markup.
    data = {"accounts": [{**account, "name": "sg"}, {**account, "name": "[bold]beijing"}]}
    assert plain(quota_table(data)).splitlines() == [
        "account        in flight  submits/s  queries/s  images today  cost today",
        "sg                   2/5          2         20            12    2.64 CNY",
        "[bold]beijing        2/5          2         20            12    2.64 CNY",
    ]
