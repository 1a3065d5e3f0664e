"""Send task-end events in the background: a scheduler thread over a heap of due sends, and a
small pool of threads that POST them.

The API never waits on this: ``schedule`` only pushes onto the heap (it is called under the
sandbox's lock, so it takes nothing but its own short lock). Due times are on the sandbox's clock;
the scheduler sleeps until the next one, waking at least every ``POLL`` seconds so that a clock
moved by a test is noticed. Each due send first lets the sandbox advance its lazy simulation
(``advance``), which starts queued tasks and schedules their events in turn, so every task's
event goes out at its end even when nobody queries it.

A POST answered 2xx is sent; a receiver that is down, slow past ``POST_TIMEOUT`` or answers
anything else is retried after ``RETRY_PAUSES``, then the event counts as failed. Nothing starts
until the first event is scheduled, which never happens without an ``event_url``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from wanedit.sandbox.events import (
    POST_TIMEOUT,
    EventTarget,
    Plan,
    published,
    redact_url,
    retry_pause,
)

log = logging.getLogger(__name__)

POLL = 0.1
SENDERS = 4
MAX_RECORDS = 100_000
SENT, LOST, FAILED, SCHEDULED, UNSENT = "sent", "lost", "failed", "scheduled", "unsent"


@dataclass
class Record:
    """One delivery of one event, as ``GET /sandbox/events`` lists it (times: the sandbox's clock).

    ``status`` is ``scheduled``, ``sent``, ``lost`` (``event_loss_rate``), ``failed`` (retries
    spent) or ``unsent`` (``event_url`` was cleared before it was due); a duplicate has its own
    record with ``duplicate`` true and the same ``event_id``.
    """

    event_id: str
    task_id: str
    task_status: str
    ended_at: float
    due_at: float
    sent_at: float | None = None
    attempts: int = 0
    status: str = SCHEDULED
    duplicate: bool = False


@dataclass
class _Send:
    body: dict[str, Any]
    record: Record
    copies: int
    attempt: int = 0
    published_at: float | None = None


@dataclass
class Counters:
    """``events_sent`` counts POSTs answered 2xx (a duplicate's second copy too),
    ``events_lost`` events dropped on purpose, ``events_duplicated`` events sent twice,
    ``events_failed`` events given up after their retries."""

    events_sent: int = 0
    events_lost: int = 0
    events_duplicated: int = 0
    events_failed: int = 0
    records: deque[Record] = field(default_factory=lambda: deque(maxlen=MAX_RECORDS))


class Publisher:
    """The background sender of one sandbox's events; thread-safe."""

    def __init__(
        self, clock: Callable[[], float], advance: Callable[[], None], target: EventTarget
    ) -> None:
        self._clock = clock
        self._advance = advance
        self._target = target
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Send]] = []
        self._order = itertools.count()
        self._counters = Counters()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def target(self) -> EventTarget:
        return self._target

    def set_target(self, target: EventTarget) -> None:
        """Use ``target`` from the next send on."""
        with self._cond:
            self._target = target

    def schedule(self, body: dict[str, Any], ended_at: float, plan: Plan) -> None:
        """Send ``body`` at ``ended_at + plan.wait``, ``plan.copies`` times (0: lost there)."""
        data = body["data"]
        due = ended_at + plan.wait
        record = Record(body["id"], data["task_id"], data["task_status"], ended_at, due)
        with self._cond:
            if self._stopped:
                return
            self._counters.records.append(record)
            self._push(due, _Send(body, record, plan.copies))
            self._start()

    def stats(self) -> dict[str, int]:
        with self._cond:
            counts = vars(self._counters)
            return {k: v for k, v in counts.items() if k != "records"}

    def records(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(vars(record)) for record in self._counters.records]

    def reset(self) -> None:
        """Zero the counters and forget the records (scheduled sends still go out)."""
        with self._cond:
            self._counters = Counters()

    def stop(self) -> None:
        """Stop scheduling and sending; sends not yet made are dropped."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
            thread, pool = self._thread, self._pool
        if thread is not None:
            thread.join(timeout=5)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _push(self, due: float, send: _Send) -> None:
        heapq.heappush(self._heap, (due, next(self._order), send))
        self._cond.notify_all()

    def _start(self) -> None:
        if self._thread is None:
            self._pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="sandbox-events-post")
            self._thread = threading.Thread(target=self._run, name="sandbox-events", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while self._wait_due():
            # Outside our lock: advancing takes the sandbox's lock, and may schedule more.
            self._advance()
            with self._cond:
                now = self._clock()
                due: list[_Send] = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
            for send in due:
                self._dispatch(send)

    def _wait_due(self) -> bool:
        """Block until a send is due; False once stopped."""
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - self._clock()
                if wait <= 0:
                    return True
                self._cond.wait(min(wait, POLL))
            return False

    def _dispatch(self, send: _Send) -> None:
        with self._cond:
            if self._stopped or self._pool is None:
                return
            if send.copies == 0:
                self._counters.events_lost += 1
                send.record.status = LOST
                return
            if self._target.url is None:
                send.record.status = UNSENT
                return
            target = self._target
            pool = self._pool
        pool.submit(self._post, send, target)

    def _post(self, send: _Send, target: EventTarget) -> None:
        if send.published_at is None:
            send.published_at = self._clock()
        body = json.dumps(published(send.body, send.published_at), ensure_ascii=False)
        headers = {"Content-Type": "application/json; charset=utf-8", **target.headers}
        send.attempt += 1
        assert target.url is not None
        try:
            answer = requests.post(
                target.url, data=body.encode("utf-8"), headers=headers, timeout=POST_TIMEOUT
            )
            ok, why = 200 <= answer.status_code < 300, f"HTTP {answer.status_code}"
            answer.close()
        except requests.RequestException as exc:
            ok, why = False, type(exc).__name__
        with self._cond:
            send.record.attempts = send.attempt
            if ok:
                self._sent(send)
                return
            pause = retry_pause(send.attempt)
            if pause is not None and not self._stopped:
                self._push(self._clock() + pause, send)
                return
            send.record.status = FAILED
            self._counters.events_failed += 1
        log.warning(
            "sandbox event %s for task %s to %s failed after %d attempts: %s",
            send.body["id"],
            send.record.task_id,
            redact_url(target.url),
            send.attempt,
            why,
        )

    def _sent(self, send: _Send) -> None:
        """Count a delivered send and queue its duplicate (called under our lock)."""
        send.record.status = SENT
        send.record.sent_at = self._clock()
        self._counters.events_sent += 1
        if send.copies > 1:
            self._counters.events_duplicated += 1
            record = Record(**{**vars(send.record), "duplicate": True})
            record.status, record.sent_at, record.attempts = SCHEDULED, None, 0
            self._counters.records.append(record)
            copy = _Send(send.body, record, 1, published_at=send.published_at)
            self._push(self._clock(), copy)
