"""Every Redis key name, spelled out: deployments hold data under these names, so a change here
is a migration, never a refactor."""

from __future__ import annotations

import pytest

from wanedit.store.keys import BatchKeys, Keys

K = Keys("wx")


@pytest.mark.parametrize(
    ("built", "name"),
    [
        (K.job("abc"), "wx:job:abc"),
        (K.job_prefix, "wx:job:"),
        (K.idempotency("order-7"), "wx:idem:order-7"),
        (K.due, "wx:due"),
        (K.callbacks, "wx:callbacks"),
        (K.metrics, "wx:metrics"),
        (K.backlog("interactive"), "wx:backlog:interactive"),
        (K.backlog("batch"), "wx:backlog:batch"),
        (K.backlog("anything else"), "wx:backlog:interactive"),
        (K.slots("main"), "wx:slots:main"),
        (K.rate("main", "submit"), "wx:rate:main:submit"),
        (K.rate("main", "query"), "wx:rate:main:query"),
        (K.penalty("main", "query"), "wx:penalty:main:query"),
        (K.spend("20260101"), "wx:spend:20260101"),
        (K.spend_prefix, "wx:spend:"),
        (K.cap, "wx:cap"),
        (K.paused, "wx:paused"),
        (K.admit_nudge, "wx:admit:nudge"),
        (K.wake("admit"), "wx:wake:admit"),
        (K.wake("watch:main"), "wx:wake:watch:main"),
        (K.provider_tasks("main"), "wx:provider-tasks:main"),
        (K.watch_seen("main"), "wx:watch-seen:main"),
        (K.durations("wan2.5-i2i-preview", "main"), "wx:durations:wan2.5-i2i-preview:main"),
        (K.deliveries("msg-1", 0), "wx:deliveries:msg-1:0"),
        (K.deliveries("msg-1", 3), "wx:deliveries:msg-1:3"),
        (K.webhook_claim("abc", 2), "wx:webhook:abc:2"),
        (K.sweep_lock, "wx:sweep:lock"),
        (K.batch_slot("nightly-20260101T0200Z"), "wx:batch-slot:nightly-20260101T0200Z"),
    ],
)
def test_key_names(built: str, name: str) -> None:
    assert built == name


def test_batch_keys() -> None:
    assert K.batch("b1") == BatchKeys(
        info="wx:batch:b1", jobs="wx:batch:b1:jobs", lines="wx:batch:b1:lines",
        invalid="wx:batch:b1:invalid", requests="wx:batch:b1:requests",
        attempts="wx:batch:b1:attempts",
    )  # fmt: skip


def test_every_key_is_under_the_prefix() -> None:
    names = [
        value
        for name in dir(Keys)
        if not name.startswith("_") and isinstance(getattr(Keys, name), property)
        for value in [getattr(K, name)]
    ]
    assert names and all(name.startswith("wx:") for name in names)
