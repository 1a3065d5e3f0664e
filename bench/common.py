"""What both designs share: the workload, the per-edit measurements, the process-tree meter and
the background sampler."""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil
from PIL import Image, ImageDraw

BUCKET = "wanedit-bench"
INPUT_KEYS = ("inputs/red.png", "inputs/green.png", "inputs/blue.png")
SAMPLE_EVERY = 0.5


@dataclass(frozen=True)
class Workload:
    """The run's parameters; both designs get the same ones."""

    edits: int = 200
    interactive: int = 10
    accounts: int = 1
    duration_min: float = 2.0
    duration_max: float = 6.0
    interactive_start: float = 10.0  # seconds after the backlog is enqueued
    interactive_every: float = 5.0
    concurrency: int = 5  # provider tasks at once per account (C)
    submit_rate: float = 5.0  # creates per second per account (R)
    query_rate: float = 20.0  # status queries per second per account (Q)
    worker_concurrency: int = 2
    seed: int = 7

    def prompt(self, kind: str, index: int) -> str:
        return f"{kind} edit {index}: put a straw hat on the subject, keep the background"

    def input_key(self, index: int) -> str:
        return INPUT_KEYS[index % len(INPUT_KEYS)]

    def timeout(self) -> float:
        """A safety limit for one design's run; the worst case is two edits at a time."""
        total = self.edits + self.interactive
        per_edit = self.duration_max + 10.0
        return 120.0 + self.interactive_start + total * per_edit / self.worker_concurrency


@dataclass
class Edit:
    """One edit as measured: our times, the provider's times (unix seconds) and its outcome."""

    job_id: str
    kind: str  # "batch" or "interactive"
    submitted_at: float
    event_at: float | None = None
    status: str | None = None
    error_code: str | None = None
    provider_scheduled: float | None = None
    provider_end: float | None = None
    polls: int | None = None
    task_id: str | None = None  # the provider task (wanedit designs)

    @property
    def task_duration(self) -> float | None:
        if self.provider_scheduled is None or self.provider_end is None:
            return None
        return self.provider_end - self.provider_scheduled

    @property
    def latency(self) -> float | None:
        return None if self.event_at is None else self.event_at - self.submitted_at

    @property
    def lag(self) -> float | None:
        if self.event_at is None or self.provider_end is None:
            return None
        return self.event_at - self.provider_end


@dataclass(frozen=True)
class TaskSpan:
    """One provider task as the sandbox timed it (unix seconds): made, started, ended."""

    created: float
    started: float | None
    ended: float | None


@dataclass(frozen=True)
class EventSend:
    """One task-end event as the sandbox delivered it (or did not): ``status`` is ``sent``,
    ``lost``, ``failed``, ``scheduled`` or ``unsent``; times on the sandbox's clock."""

    task_id: str
    status: str
    ended_at: float
    sent_at: float | None
    duplicate: bool = False


@dataclass
class Sample:
    t: float
    running: int
    pending: int
    depth: int
    rss: int


@dataclass
class RunResult:
    """Everything one design's run measured."""

    design: str
    accounts: int
    edits: list[Edit]
    started_at: float  # the first enqueue
    backlog_enqueued_at: float
    finished_at: float  # the last completion event (or the timeout)
    sandbox_stats: dict[str, Any]
    account_names: dict[str, str]  # sandbox key -> account name
    cpu_seconds: float
    peak_rss: int
    samples: list[Sample]
    depth_source: str
    notes: list[str] = field(default_factory=list)
    tasks: list[TaskSpan] = field(default_factory=list)  # every provider task, from the sandbox
    event_delay: float | None = None  # events designs: the sandbox's delay before each POST
    event_sends: list[EventSend] = field(default_factory=list)  # events designs: each delivery


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (640, 640)) -> bytes:
    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.25, h * 0.2, w * 0.75, h * 0.8), fill=tuple(255 - c for c in color))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def upload_inputs(s3: Any, *, bucket_made: bool = False) -> None:
    """Create the bucket (unless made) and put the few input images in it, once per run."""
    if not bucket_made:
        s3.create_bucket(Bucket=BUCKET)
    colors = ((200, 60, 50), (60, 170, 80), (50, 90, 200))
    for key, color in zip(INPUT_KEYS, colors, strict=True):
        s3.put_object(Bucket=BUCKET, Key=key, Body=png_bytes(color), ContentType="image/png")


def s3_client(env: Mapping[str, str]) -> Any:
    """A boto3 client for moto's server, built from its AWS_* environment."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


def stream_time(entry_id: str) -> float:
    """When Redis appended a stream entry: the milliseconds part of its id."""
    return int(entry_id.split("-", 1)[0]) / 1000.0


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class ProcessTree:
    """A worker process and all its descendants, measured with psutil."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def _members(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU of the tree so far, including children that have ended."""
        total = 0.0
        for proc in self._members():
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            # children_* cover only ended children that were waited for: never double counted.
            total += t.user + t.system + t.children_user + t.children_system
        return total

    def rss(self) -> int:
        """Summed resident memory of the tree now, in bytes."""
        total = 0
        for proc in self._members():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total


class Sampler:
    """Calls ``probe`` every SAMPLE_EVERY seconds in a daemon thread and keeps the samples."""

    def __init__(self, probe: Callable[[], Sample]) -> None:
        self.probe = probe
        self.samples: list[Sample] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.samples.append(self.probe())
            except Exception:  # a missed sample must not end the run
                self.errors += 1
            next_at += SAMPLE_EVERY
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return self.samples

    @property
    def peak_rss(self) -> int:
        return max((s.rss for s in self.samples), default=0)


def task_spans(sandbox: Any, keys: list[str]) -> list[TaskSpan]:
    """Every task of the accounts of ``keys`` with the sandbox's times, read through its task list
    (``GET /tasks``, called in-process: call it after taking the stats, as it counts lists)."""
    from wanedit.sandbox.errors import ApiError

    spans: dict[str, TaskSpan] = {}
    for key in keys:
        page, pages, refused = 1, 1, 0
        while page <= pages:
            try:
                answer = sandbox.list_tasks(key, {"page_size": "100", "page_no": str(page)})
            except ApiError:  # its query rate: the next token comes within 1/Q s
                refused += 1
                if refused > 50:
                    raise
                time.sleep(0.1)
                continue
            pages = int(answer["total_page"])
            for row in answer["data"]:
                spans[row["task_id"]] = TaskSpan(
                    created=row["gmt_create"] / 1000.0,
                    started=_ms(row.get("start_time")),
                    ended=_ms(row.get("end_time")),
                )
            page += 1
    return sorted(spans.values(), key=lambda span: span.created)


def _ms(value: Any) -> float | None:
    return None if value is None else int(value) / 1000.0


def event_sends(sandbox: Any) -> list[EventSend]:
    """The sandbox's record of every event delivery (``GET /sandbox/events``, in-process)."""
    return [
        EventSend(
            task_id=str(r["task_id"]),
            status=str(r["status"]),
            ended_at=float(r["ended_at"]),
            sent_at=None if r.get("sent_at") is None else float(r["sent_at"]),
            duplicate=bool(r.get("duplicate")),
        )
        for r in sandbox.event_records()
    ]
