"""What each observation means: a Check with its fix. Pure, and tested as tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from wanedit.accounts import REGIONS
from wanedit.doctor.report import Check, fail, ok, warn

AOF_FIX = "CONFIG SET appendonly yes (and `appendonly yes` in redis.conf, so a restart keeps it)"
EVICTION_FIX = (
    "CONFIG SET maxmemory-policy noeviction (and `maxmemory-policy noeviction` in redis.conf)"
)
BEAT_FIX = "run exactly one `celery -A wanedit.workers beat` with the workers' settings"
WORKER_FIX = "start workers: `celery -A wanedit.workers worker` with the same settings as here"
BEIJING_BASE = "https://dashscope.aliyuncs.com/api/v1"
SINGAPORE_BASE = "https://dashscope-intl.aliyuncs.com/api/v1"
# Sweeps seen in this many intervals tell one beat from two.
BEAT_WINDOW_INTERVALS = 6


def persistence(aof_enabled: bool, save_rules: str | None) -> Check:
    """Redis keeps the queue, job records and slots: without persistence a restart loses them."""
    name = "redis persistence"
    if aof_enabled:
        return ok(name, "AOF on (appendonly yes)")
    if save_rules is None:
        return warn(name, "AOF off; RDB snapshot rules unreadable (CONFIG GET refused)", AOF_FIX)
    if save_rules.strip():
        return warn(
            name,
            f"RDB snapshots only (save {save_rules.strip()}): a crash loses every write since "
            "the last snapshot",
            AOF_FIX,
        )
    return fail(
        name, "no persistence (AOF off, no RDB snapshots): a restart loses the queue", AOF_FIX
    )


def eviction(policy: str) -> Check:
    """A queue must never be evicted: a full Redis should refuse writes instead."""
    name = "redis eviction policy"
    if policy == "noeviction":
        return ok(name, "noeviction: a full Redis refuses writes, nothing is dropped")
    if policy.startswith("volatile"):
        return warn(
            name,
            f"{policy}: keys with an expiry (ended jobs, idempotency keys, locks) may be evicted",
            EVICTION_FIX,
        )
    return fail(
        name, f"{policy}: any key may be evicted, queued jobs and their records too", EVICTION_FIX
    )


def beat(times: Sequence[float], now: float, interval: float) -> Check:
    """Beat sends the sweeper every `interval` s; each sweep notes its time (newest first)."""
    name = "beat"
    if not times:
        return fail(
            name, "no sweep has run: beat is not running, or no worker takes its messages", BEAT_FIX
        )
    age = now - max(times)
    if age > 3 * interval + 30:
        return fail(
            name,
            f"the last sweep ran {age:.0f} s ago; beat sends one every {interval:g} s",
            BEAT_FIX,
        )
    window = BEAT_WINDOW_INTERVALS * interval
    recent = sum(1 for moment in times if now - moment <= window)
    if recent > 1.5 * BEAT_WINDOW_INTERVALS + 1:
        return warn(
            name,
            f"{recent} sweeps in the last {window:.0f} s, where one beat sends "
            f"{BEAT_WINDOW_INTERVALS}: more than one beat is running (or a backed-up queue "
            "was just drained)",
            "stop the extra beats: " + BEAT_FIX,
        )
    return ok(name, f"the sweeper ran {age:.0f} s ago (every {interval:g} s)")


def queues(replies: Mapping[str, Sequence[str]] | None, queue: str, timeout: float) -> Check:
    """Workers that answered `inspect().active_queues()` and the queues each consumes."""
    name = "workers"
    if not replies:
        return fail(name, f"no worker answered within {timeout:g} s", WORKER_FIX)
    wrong = sorted(worker for worker, names in replies.items() if queue not in names)
    if wrong:
        seen = "; ".join(f"{w}: {', '.join(replies[w]) or 'none'}" for w in wrong)
        return fail(
            name,
            f"{len(wrong)} of {len(replies)} workers do not consume the queue {queue!r} ({seen})",
            f"run them with WANEDIT_QUEUE={queue} (the settings the producers use)",
        )
    return ok(name, f"{len(replies)} consuming {queue!r}: {', '.join(sorted(replies))}")


def other_base_url(base_url: str) -> str:
    """The other region's endpoint, for a key refused by this one."""
    host = urlsplit(base_url).hostname or ""
    if host == "dashscope.aliyuncs.com":
        return SINGAPORE_BASE
    if host == "dashscope-intl.aliyuncs.com":
        return BEIJING_BASE
    return f"{SINGAPORE_BASE} (Singapore) or {BEIJING_BASE} (Beijing)"


def key_refused(account: str, base_url: str, code: str, message: str) -> Check:
    """The key was refused (InvalidApiKey): a wrong key, or a key of the other region."""
    host = urlsplit(base_url).hostname or base_url
    region = REGIONS.get(host, f"host {host}")
    return fail(
        f"provider key [{account}]",
        f"{code}: {message} (refused by the {region} endpoint {base_url})",
        "check the key; a key made in the other region is refused here: set the account's "
        f"base_url (DASHSCOPE_HTTP_BASE_URL) to {other_base_url(base_url)}, or use a key made "
        "for this endpoint's region",
    )


def zone(
    account: str, measured: float | None, configured: float | None, how: str, stored: float | None
) -> Check:
    """The zone the provider's time strings are in, against what the workers use."""
    name = f"provider time zone [{account}]"
    if measured is None:
        using = (
            f"configured UTC{configured:+g}"
            if configured is not None
            else f"UTC{stored:+g}, measured before"
            if stored is not None
            else "UTC+8 (the documented Beijing time) until a task measures it"
        )
        return warn(
            name,
            f"not measured: {how}; the workers use {using}",
            "`wanedit doctor --live` measures it with one edit (or wait for the first job)",
        )
    if configured is not None and configured != measured:
        return fail(
            name,
            f"the provider writes UTC{measured:+g} ({how}), but UTC{configured:+g} is "
            f"configured: list windows and lags are {abs(measured - configured):g} h off",
            f"set the account's utc_offset (or WANEDIT_PROVIDER_UTC_OFFSET) to {measured:g}, or "
            "unset it and the workers use the measured zone",
        )
    using = "as configured" if configured is not None else "recorded: the workers read it"
    return ok(name, f"UTC{measured:+g} ({how}); {using}")


def clock_skew(skew: float | None, uncertainty: float, tolerated: float) -> Check:
    """The provider's clock (its HTTP Date header) against ours; `tolerated` is
    WANEDIT_RECONCILE_SKEW, the skew the reconcile windows allow for."""
    name = "clock skew"
    if skew is None:
        return warn(name, "the provider's answer had no readable Date header", "")
    text = f"the provider's clock is {skew:+.1f} s (±{uncertainty:.1f} s) from ours"
    if abs(skew) <= 5 + uncertainty:
        return ok(name, text)
    fix = "sync this machine's clock (NTP); the workers' clocks must be right too"
    if abs(skew) - uncertainty <= tolerated:
        return warn(name, text, fix)
    return fail(
        name,
        f"{text}, beyond WANEDIT_RECONCILE_SKEW ({tolerated:g} s): lost creates could be "
        "looked for in the wrong window",
        fix,
    )
