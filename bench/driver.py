"""The workload loop both designs share: enqueue the backlog, send the interactive edits on their
schedule, and read completion events until every edit has one (or the run times out)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from bench.common import Edit, Workload, stream_time
from wanedit.store.events import read_events

Submit = Callable[[str, int], str]  # (kind, index) -> job id
PROGRESS_EVERY = 15.0
READ_PAUSE = 0.1


@dataclass
class Drive:
    edits: dict[str, Edit]
    started_at: float
    backlog_enqueued_at: float
    finished_at: float
    timed_out: bool


def drive(
    workload: Workload,
    submit: Submit,
    client: redis.Redis,
    stream: str,
    say: Callable[[str], None],
    on_submit: Callable[[str], None] | None = None,
) -> Drive:
    """Run the workload through ``submit``; event times come from the stream entry ids."""
    edits: dict[str, Edit] = {}

    def send(kind: str, index: int) -> None:
        sent_at = time.time()
        job_id = submit(kind, index)
        edits[job_id] = Edit(job_id=job_id, kind=kind, submitted_at=sent_at)
        if on_submit:
            on_submit(job_id)

    started = time.time()
    for index in range(workload.edits):
        send("batch", index)
    enqueued = time.time()
    say(f"  {workload.edits} batch edits enqueued in {enqueued - started:.1f} s")
    due = [
        enqueued + workload.interactive_start + k * workload.interactive_every
        for k in range(workload.interactive)
    ]
    sent_interactive = 0
    deadline = started + workload.timeout()
    last_id = "0-0"
    done = 0
    finished = started
    next_progress = time.monotonic() + PROGRESS_EVERY
    while (done < len(edits) or due) and time.time() < deadline:
        if due and time.time() >= due[0]:
            due.pop(0)
            send("interactive", sent_interactive)
            sent_interactive += 1
            continue
        for entry_id, event in read_events(client, stream, start=last_id):
            last_id = entry_id
            edit = edits.get(str(event.get("job_id")))
            if edit is None or edit.event_at is not None:
                continue
            _record_event(edit, entry_id, event)
            finished = max(finished, edit.event_at or finished)
            done += 1
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_EVERY
            say(f"  {done}/{len(edits)} edits ended after {time.time() - started:.0f} s")
        time.sleep(READ_PAUSE)
    timed_out = done < len(edits) or bool(due)
    if timed_out:
        finished = time.time()
        say(f"  timed out: {len(edits) - done} edits without an event, {len(due)} never sent")
    return Drive(edits, started, enqueued, finished, timed_out)


def _record_event(edit: Edit, entry_id: str, event: dict[str, Any]) -> None:
    edit.event_at = stream_time(entry_id)
    edit.status = str(event.get("status") or "")
    error = event.get("error")
    if isinstance(error, dict) and error.get("code"):
        edit.error_code = str(error["code"])
