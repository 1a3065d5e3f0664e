"""The sandbox's behaviour behind the HTTP layer: accounts, limits, tasks, faults, results.

One lock guards the task store, the limiters, the random draws and the counters. It is never
held while fetching input images or rendering results, the two slow steps.

Every behaviour follows docs/dashscope.md (and the API reference beside it):
quotas per main account (``wanedit.sandbox.accounts``), the list
(``wanedit.sandbox.listing``), answer bodies and Beijing-time strings
(``wanedit.sandbox.answers``), faults and lost create answers (``wanedit.sandbox.faults``).

Choices where the real provider's answer is unconfirmed:

- Cancel of a task that is not PENDING, or of an id that is unknown, foreign (another main
  account's) or expired, answers 400 ``UnsupportedOperation`` with the provider's "Failed to
  cancel the task" message: to the caller all of these are "not a PENDING task of mine".
- The query bucket (``query_rate``, 20/s) is shared by ``GET /tasks/{id}``, ``GET /tasks`` and
  cancels (docs/dashscope.md: "assume it is"); each takes one token and is answered 429 when it is
  empty. Injected 500s (``http_error_rate``) hit creates and ``GET /tasks/{id}`` only; injected
  429s (``throttle_rate``) hit every API call.
- A create answered with an injected 500 (``http_error_rate``) creates no task: it is refused
  before the body is read. A lost answer (``lost_answer_rate``, ``[sandbox:lost-*]``) comes after
  the task was made; ``lost_answers`` counts those, not ``http_errors``.
- The 6th task while 5 run is accepted and left PENDING in a FIFO queue with no cap (the docs
  say it "joins a queue and waits to be scheduled"; order and cap are undocumented).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from wanedit.sandbox import answers, errors, events, faults, listing
from wanedit.sandbox.accounts import keys_arg
from wanedit.sandbox.errors import invalid_parameter
from wanedit.sandbox.images import Fetcher, InputImage, load_images
from wanedit.sandbox.limits import TokenBucket
from wanedit.sandbox.params import SEED_MAX, EditRequest, decode_json, default_size, parse_create
from wanedit.sandbox.publisher import Publisher
from wanedit.sandbox.render import render_png
from wanedit.sandbox.settings import RUNTIME_FIELDS, SandboxConfig, check_durations
from wanedit.sandbox.signing import UrlSigner
from wanedit.sandbox.tasks import PENDING, SUCCEEDED, Task, TaskStore

Clock = Callable[[], float]
RENDER_CACHE_SIZE = 64


class DownloadError(Exception):
    """A refused result download, answered as OSS does (XML error body)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Counters:
    """Request counters; see ``Sandbox.stats`` for their meaning."""

    creates: int = 0
    create_requests: int = 0
    queries: int = 0
    lists: int = 0
    cancels: int = 0
    cancel_requests: int = 0
    throttled: int = 0
    http_errors: int = 0
    downloads: int = 0
    lost_answers: int = 0
    lost_answers_by_mode: dict[str, int] = field(default_factory=dict)


@dataclass
class _Limits:
    submit: TokenBucket
    query: TokenBucket


@dataclass(frozen=True)
class _Snapshot:
    inputs: tuple[InputImage, ...]
    size: tuple[int, int]
    seed: int
    prompt: str
    label: str
    index: int


@dataclass
class Sandbox:
    """The provider simulation; every public method is thread-safe."""

    config: SandboxConfig
    clock: Clock = time.time
    fetch: Fetcher | None = None
    signer: UrlSigner = field(default_factory=UrlSigner)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._rates = self.config.fault_rates()
        self._lost_modes = self.config.lost_answer_modes
        self._arrears = frozenset(self.config.arrears_keys)
        self._durations = (self.config.duration_min, self.config.duration_max)
        self._zone = self.config.zone()
        self._accounts = self.config.accounts()
        # Task-end events: scheduled when a task starts (its end is then known) or is canceled.
        self._events = Publisher(self.clock, self._tick, self.config.event_target())
        self._store = TaskStore(self.config.concurrency, self.config.result_ttl, self._publish)
        # One quota per main account, whichever of its keys calls.
        self._limits = {
            name: _Limits(
                TokenBucket.per_second(self.config.submit_rate),
                TokenBucket.per_second(self.config.query_rate),
            )
            for name in self._accounts.names()
        }
        # Its own generator, so the "shuffled" list order draws nothing from the fault draws.
        self._shuffle_salt = str(random.Random(self.config.seed).getrandbits(64))
        self._counters = Counters()
        self._tasks_by_prompt: dict[str, int] = {}
        self._last_now = float("-inf")
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        # The real provider serves stored files: render each result once, in the background,
        # as soon as the task exists, so a download costs no rendering time.
        self._renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-render")

    def authenticate(self, authorization: str | None) -> str:
        """The API key of an ``Authorization: Bearer <key>`` header, if the sandbox accepts it."""
        scheme, _, key = (authorization or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or self._accounts.main_of(key) is None:
            raise errors.invalid_api_key()
        if key in self._arrears:
            raise errors.arrearage()
        return key

    def create(
        self,
        key: str,
        raw_body: bytes,
        async_header: str | None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Accept a create request; answers the PENDING task or raises ApiError or LostAnswer.

        ``request_id`` is the id of this create call's answer, which the task list shows.
        """
        account = self._main(key)
        with self._lock:
            self._counters.create_requests += 1
            if (async_header or "").strip().lower() != "enable":
                raise errors.sync_not_supported()
            self._admit(self._limits[account].submit, http_error_rate=True)
        request = parse_create(decode_json(raw_body))
        inputs = load_images(request.images, self.fetch)
        with self._lock:
            if faults.rejects_input(request.prompt, self._rates, self._rng):
                raise errors.input_moderation()
            task = self._new_task(account, key, request, inputs)
            task.request_id = request_id or str(uuid.uuid4())
            self._store.add(task)
            self._counters.creates += 1
            self._tasks_by_prompt[request.prompt] = self._tasks_by_prompt.get(request.prompt, 0) + 1
            lost = faults.lost_answer(request.prompt, self._rates, self._lost_modes, self._rng)
            if lost is not None:
                self._counters.lost_answers += 1
                by_mode = self._counters.lost_answers_by_mode
                by_mode[lost] = by_mode.get(lost, 0) + 1
        for index in range(task.request.n):
            if index not in task.outcome.failed_images:
                self._renderer.submit(self._render, task.task_id, self._snapshot_of(task, index))
        if lost == faults.LOST_LATE:
            # The task exists and will run, but the answer arrives after the client gave up.
            time.sleep(self.config.lost_answer_delay)
        elif lost == faults.LOST_500:
            raise errors.internal_error()
        elif lost is not None:
            raise errors.LostAnswer(lost)
        # The provider always answers a create with PENDING, even when a slot was free.
        return {"output": {"task_status": PENDING, "task_id": task.task_id}}

    def close(self) -> None:
        """Stop rendering and sending events in the background."""
        self._renderer.shutdown(wait=False, cancel_futures=True)
        self._events.stop()

    def query(self, key: str, task_id: str, base_url: str) -> dict[str, Any]:
        """The ``GET /tasks/{id}`` body; result URLs start with ``base_url``."""
        account = self._main(key)
        with self._lock:
            self._counters.queries += 1
            self._admit(self._limits[account].query, http_error_rate=True)
            now = self._now()
            task = self._store.get(task_id, account, now)
            if task is None:
                return answers.unknown_output(task_id)
            return answers.query_body(task, now, self._url_maker(task, base_url), self._zone)

    def cancel(self, key: str, task_id: str) -> dict[str, Any]:
        """Cancel a PENDING task of the key's main account or raise ApiError.

        The answer is empty: the provider's body is only ``{"request_id"}``, which the HTTP
        layer adds.
        """
        account = self._main(key)
        with self._lock:
            self._counters.cancel_requests += 1
            self._admit(self._limits[account].query, http_error_rate=False)
            if not self._store.cancel(task_id, account, self._now()):
                raise errors.cancel_refused()
            self._counters.cancels += 1
            canceled = self._store.find(task_id)
            if canceled is not None:
                self._publish(canceled)
        return {}

    def list_tasks(self, key: str, args: Mapping[str, str]) -> dict[str, Any]:
        """The ``GET /tasks`` body: every task of the key's main account, one page."""
        account = self._main(key)
        with self._lock:
            self._counters.lists += 1
            self._admit(self._limits[account].query, http_error_rate=False)
            now = self._now()
            query = listing.parse_query(args, now, self._zone)
            listed_before = now - self.config.list_delay  # sandbox-only, see SandboxConfig
            tasks = [
                t
                for t in self._store.listed(account, now)
                if query.in_window(t.submit_at) and t.submit_at <= listed_before
            ]
            if self.config.list_order == "shuffled":
                tasks.sort(key=lambda t: listing.shuffle_key(self._shuffle_salt, t.task_id))
            rows = [answers.list_row(t, now, self.config.region) for t in tasks]
        return listing.page([row for row in rows if query.matches(row)], query)

    def download(
        self, task_id: str, index: int, expires: str | None, signature: str | None
    ) -> bytes:
        """The PNG bytes of one result image behind a signed URL."""
        path = result_path(task_id, index)
        with self._lock:
            refused = self.signer.check(path, expires, signature, self._now())
            if refused:
                raise DownloadError(403, "AccessDenied", refused)
            snapshot = self._snapshot(task_id, index)
            self._counters.downloads += 1
        return self._render(task_id, snapshot)

    def _render(self, task_id: str, snapshot: _Snapshot) -> bytes:
        key = (task_id, snapshot.index)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        images = [image.open() for image in snapshot.inputs]
        png = render_png(images, snapshot.size, snapshot.seed, snapshot.prompt, snapshot.label)
        with self._cache_lock:
            self._cache[key] = png
            while len(self._cache) > RENDER_CACHE_SIZE:
                self._cache.popitem(last=False)
        return png

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset, tasks by status now, and peak concurrency.

        ``create_requests`` counts every create, ``creates`` the accepted ones (tasks made);
        ``queries`` counts ``GET /tasks/{id}`` calls, ``lists`` the list calls,
        ``cancel_requests`` the cancel calls and ``cancels`` the tasks canceled; ``throttled``
        the 429s and ``http_errors`` the injected 500s sent (refusals: no task); ``downloads``
        the result downloads served. ``max_running`` is the most tasks one main account had
        RUNNING at once (``max_running_by_account`` per main account, named after its first
        key). ``lost_answers`` counts creates that made their task but whose answer was lost
        (``lost_answers_by_mode`` per mode); ``repeated_prompts`` maps each prompt that created
        more than one task to its task count (a client that creates twice for one edit shows
        up there, when each edit has its own prompt).
        """
        with self._lock:
            now = self._now()
            by_account = self._store.max_running()
            data: dict[str, Any] = dict(vars(self._counters))
            data["lost_answers_by_mode"] = dict(self._counters.lost_answers_by_mode)
            data["tasks_by_status"] = self._store.counts(now)
            data["tasks"] = len(self._store)
            data["max_running"] = max(by_account.values(), default=0)
            data["max_running_by_account"] = by_account
            data["repeated_prompts"] = {p: c for p, c in self._tasks_by_prompt.items() if c > 1}
        data.update(self._events.stats())
        return data

    def event_records(self) -> list[dict[str, Any]]:
        """Sandbox-only: every event delivery since the last reset (``publisher.Record``)."""
        with self._lock:
            self._now()
        return self._events.records()

    def reset_stats(self) -> None:
        """Zero the counters and the peak concurrency (tasks are kept)."""
        with self._lock:
            self._counters = Counters()
            self._store.reset_max_running(self._now())
        self._events.reset()

    def runtime_config(self) -> dict[str, Any]:
        """The current configuration, including runtime changes."""
        with self._lock:
            data = self.config.as_dict()
            data.update(vars(self._rates))
            data["lost_answer_modes"] = list(self._lost_modes)
            data["arrears_keys"] = sorted(self._arrears)
            data["duration_min"], data["duration_max"] = self._durations
            target = self._events.target
            data["event_url"] = events.redact_url(target.url)
            data["event_headers"] = events.redact_headers(target.headers)
            data["event_delay"], data["event_jitter"] = target.delay, target.jitter
        return data

    def update_config(self, changes: Any) -> dict[str, Any]:
        """Change fault rates, lost-answer modes and durations at runtime.

        ``lost_answer_modes`` takes a list of modes or a comma-separated string; every other
        field a number. Raise ApiError for a bad change.
        """
        if not isinstance(changes, dict):
            raise invalid_parameter("The request body must be a JSON object.")
        unknown = sorted(set(changes) - set(RUNTIME_FIELDS))
        if unknown:
            raise invalid_parameter(
                f"{', '.join(unknown)}: not changeable; use {', '.join(RUNTIME_FIELDS)}."
            )
        lists = ("lost_answer_modes", "arrears_keys", "event_url", "event_headers")
        numbers = {k: v for k, v in changes.items() if k not in lists}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise invalid_parameter(f"{name}: must be a number.")
        modes = _modes_arg(changes.get("lost_answer_modes"), self._lost_modes)
        try:
            arrears = keys_arg(changes.get("arrears_keys"), self._arrears)
        except ValueError as exc:
            raise invalid_parameter(str(exc)) from None
        with self._lock:
            low = float(changes.get("duration_min", self._durations[0]))
            high = float(changes.get("duration_max", self._durations[1]))
            rate_changes = {k: float(v) for k, v in numbers.items() if k.endswith("_rate")}
            current = self._events.target
            try:
                check_durations(low, high)
                faults.check_lost_modes(modes)
                rates = replace(self._rates, **rate_changes)
                target = events.EventTarget(
                    changes.get("event_url", current.url),
                    changes.get("event_headers", current.headers),
                    changes.get("event_delay", current.delay),
                    changes.get("event_jitter", current.jitter),
                )
            except ValueError as exc:
                raise invalid_parameter(str(exc)) from None
            self._events.set_target(target)
            self._rates = rates
            self._lost_modes = modes
            self._arrears = arrears
            self._durations = (low, high)
        return self.runtime_config()

    def _tick(self) -> None:
        """Advance the simulation to now (the event scheduler's way to start queued tasks)."""
        with self._lock:
            self._now()

    def _publish(self, task: Task) -> None:
        """Schedule the task's end event, if events are on (called under the lock)."""
        target = self._events.target
        if target.url is None:
            return  # no draws either: the seeded fault draws stay as they were
        rates = self._rates
        plan = events.plan(self._rng, target, rates.event_loss_rate, rates.event_dup_rate)
        body = events.event_body(task, self._zone, self.config.region)
        self._events.schedule(body, events.ended_at(task), plan)

    def _admit(self, bucket: TokenBucket, http_error_rate: bool) -> None:
        now = self._now()
        if not bucket.take(now) or faults.draw(self._rng, self._rates.throttle_rate):
            self._counters.throttled += 1
            raise errors.throttled()
        if http_error_rate and faults.draw(self._rng, self._rates.http_error_rate):
            self._counters.http_errors += 1
            raise errors.internal_error()

    def _main(self, key: str) -> str:
        main = self._accounts.main_of(key)
        if main is None:
            raise errors.invalid_api_key()
        return main

    def _now(self) -> float:
        # The simulation needs time that never goes back, even if the wall clock does.
        self._last_now = max(self._last_now, self.clock())
        self._store.advance(self._last_now)
        return self._last_now

    def _new_task(
        self, account: str, key: str, request: EditRequest, inputs: list[InputImage]
    ) -> Task:
        last = inputs[-1]
        seed = request.seed if request.seed is not None else self._rng.randint(0, SEED_MAX)
        return Task(
            task_id=str(uuid.uuid4()),
            account=account,
            api_key=key,
            submit_at=self._now(),
            duration=self._rng.uniform(*self._durations),
            request=request,
            size=request.size or default_size(last.width, last.height),
            seed=seed,
            inputs=tuple(inputs),
            outcome=faults.plan_outcome(request.prompt, request.n, self._rates, self._rng),
        )

    def _url_maker(self, task: Task, base_url: str) -> Callable[[int], str]:
        end = task.end_at if task.end_at is not None else task.submit_at
        expires_at = end + self.config.result_ttl

        def url_for(index: int) -> str:
            return base_url.rstrip("/") + self.signer.sign(
                result_path(task.task_id, index), expires_at
            )

        return url_for

    def _snapshot(self, task_id: str, index: int) -> _Snapshot:
        task = self._store.find(task_id)
        now = self._last_now
        if (
            task is None
            or task.status(now) != SUCCEEDED
            or not 0 <= index < task.request.n
            or index in task.outcome.failed_images
        ):
            raise DownloadError(404, "NoSuchKey", "The specified key does not exist.")
        return self._snapshot_of(task, index)

    @staticmethod
    def _snapshot_of(task: Task, index: int) -> _Snapshot:
        seed = (task.seed + index) % (SEED_MAX + 1)
        label = f"sandbox {task.task_id[:8]}  image {index + 1}/{task.request.n}  seed {seed}"
        return _Snapshot(task.inputs, task.size, seed, task.request.prompt, label, index)


def result_path(task_id: str, index: int) -> str:
    return f"/results/{task_id}/{index}.png"


def _modes_arg(value: Any, current: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return current
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_parameter("lost_answer_modes: must be a list of modes or a string.")
    return tuple(v.strip() for v in value if v.strip())
