"""Paused accounts in Redis: an account whose creates the provider refuses for the account's
sake (its key, region, bill, purchase or free quota) takes no new jobs until it is resumed.

One hash holds every pause (name -> code, message, since), shared by every worker and producer.
Admission (lua/admit.lua) gives no slot on a paused account; a job admitted to it before the
pause goes back to the backlog (lua/requeue.lua). Pausing and resuming write `account.paused` and
`account.resumed` to the events stream, once each; neither carries a key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from wanedit.states import Status
from wanedit.store.keys import Keys
from wanedit.store.scripts import source

WAITING_PREFIX = "account_paused"


@dataclass(frozen=True)
class Pause:
    """Why an account is paused, and since when (unix seconds)."""

    code: str
    message: str
    since: float

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "since": _iso(self.since)}

    @property
    def waiting_for(self) -> str:
        """What a job waiting on this account is waiting for."""
        return f"{WAITING_PREFIX}: {self.code}: {self.message}"


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def parse(raw: str | bytes) -> Pause:
    data = json.loads(raw)
    return Pause(str(data["code"]), str(data["message"]), float(data["since"]))


def waiting_note(pauses: Mapping[str, Pause], accounts: Iterable[str]) -> str | None:
    """What a queued job waits for when every account is paused (None while one serves): the
    pause of each account, in the configured order."""
    names = list(accounts)
    if not names or any(name not in pauses for name in names):
        return None
    return "; ".join(f"{pauses[name].waiting_for} ({name})" for name in names)


class AccountPauses:
    """Pause, resume and read the accounts' pauses."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._pause = client.register_script(source("account_pause"))
        self._resume = client.register_script(source("account_resume"))
        self._requeue = client.register_script(source("requeue"))

    def pause(
        self,
        account: str,
        code: str,
        message: str,
        *,
        stream: str,
        maxlen: int,
        now: float | None = None,
    ) -> bool:
        """Pause `account` (True), or update why it is paused (False: it was already)."""
        moment = time.time() if now is None else now
        why = {"code": code, "message": message, "since": moment}
        event = {
            "event_id": f"account:{account}:paused:{int(moment * 1000)}",
            "type": "account.paused",
            "account": account,
            "error": {"code": code, "message": message},
            "occurred_at": _iso(moment),
        }
        answer = self._pause(
            keys=[self.keys.account_pauses, stream],
            args=[account, json.dumps(why), json.dumps(event), maxlen],
        )
        return bool(answer)

    def resume(
        self, account: str, *, by: str, stream: str, maxlen: int, now: float | None = None
    ) -> Pause | None:
        """Lift `account`'s pause; returns the pause lifted (None: it was not paused). `by`
        says what lifted it (`command`, `probe`)."""
        moment = time.time() if now is None else now
        event = {
            "event_id": f"account:{account}:resumed:{int(moment * 1000)}",
            "type": "account.resumed",
            "account": account,
            "by": by,
            "occurred_at": _iso(moment),
        }
        old = self._resume(
            keys=[self.keys.account_pauses, stream, self.keys.account_probe(account)],
            args=[account, json.dumps(event), maxlen],
        )
        return None if old is None else parse(old)

    def get(self, account: str) -> Pause | None:
        raw: Any = self.redis.hget(self.keys.account_pauses, account)
        return None if raw is None else parse(raw)

    def all(self) -> dict[str, Pause]:
        raw: Any = self.redis.hgetall(self.keys.account_pauses)
        return {str(name): parse(value) for name, value in raw.items()}

    def requeue(self, job_id: str, account: str, token: int | None) -> bool:
        """Give back the slot `job_id` holds on `account` from the admission of `token` (None:
        any) and put the job back in the backlog at its arrival; False when it no longer holds
        it, or a create is in flight."""
        keys = self.keys
        queued = Status.QUEUED.value
        return bool(
            self._requeue(
                keys=[
                    keys.slots(account),
                    keys.job(job_id),
                    keys.backlog("interactive"),
                    keys.backlog("batch"),
                ],
                args=[
                    job_id,
                    "" if token is None else token,
                    keys.spend_prefix,
                    queued,
                    int(time.time() * 1000),
                ],
            )
        )

    def probe_turn(self, account: str, interval: float) -> bool:
        """True for the one caller per `interval` seconds that probes the paused `account`."""
        key = self.keys.account_probe(account)
        return bool(self.redis.set(key, 1, nx=True, px=max(int(interval * 1000), 1)))
