"""Where a slot's time goes between a task's end and the next create, in an events design's run.

    python -m bench.event_gaps [DESIGN]      (default wanedit-events; reads bench/logs/)

For each task that ended while the backlog still waited, from the run's dump
(``DESIGN-run.json``), the receiver's log and the worker's log:

- end -> event sent: the sandbox's POST of the task-end event (its delay plus its sender);
- event -> query answered: from the receiver's "looking" line to the worker's line that saw
  the task succeed (the result query, within the account's query rate);
- query -> next create: from there to the next create the sandbox received (the slot given
  back, admission, the create's own round trip; when two tasks end together, the second create
  waits for its 1/R turn).

Tasks whose event never arrived are left out (their slot waits for the safety-net look).
"""

from __future__ import annotations

import bisect
import json
import re
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.common import percentile

ROOT = Path(__file__).resolve().parents[1]
STAMP = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): [^\]]*\] "
LOOKING = re.compile(STAMP + r"job (\w+): provider task (\S+) ended \(event")
SEEN = re.compile(STAMP + r"job (\w+): provider succeeded")


def _time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp()


def first_lines(path: Path, pattern: re.Pattern[str], group: int) -> dict[str, float]:
    """The time of the first line matching ``pattern`` per value of ``group``."""
    found: dict[str, float] = {}
    for line in path.read_text(errors="replace").splitlines():
        match = pattern.match(line)
        if match:
            found.setdefault(match.group(group), _time(match.group(1)))
    return found


def segments(run: dict, looked: dict[str, float], seen: dict[str, float]) -> dict[str, list]:
    """The three segments, in seconds, per task (see the module's docstring)."""
    task_of = {e["job_id"]: e["task_id"] for e in run["edits"]}
    seen_by_task = {task_of[j]: t for j, t in seen.items() if j in task_of}
    sent = {
        s["task_id"]: s["sent_at"]
        for s in run["event_sends"]
        if s["sent_at"] is not None and not s["duplicate"]
    }
    creates = sorted(t["created"] for t in run["tasks"])
    last_create = creates[-1] if creates else 0.0
    out: dict[str, list] = {"end -> event sent": [], "event -> query answered": []}
    out["query -> next create"] = []
    for edit in run["edits"]:
        task, end = edit["task_id"], edit["provider_end"]
        if end is None or end > last_create:
            continue
        if task not in sent or task not in looked or task not in seen_by_task:
            continue
        out["end -> event sent"].append(sent[task] - end)
        out["event -> query answered"].append(seen_by_task[task] - looked[task])
        at = bisect.bisect_left(creates, seen_by_task[task] - 0.001)
        if at < len(creates):
            out["query -> next create"].append(creates[at] - seen_by_task[task])
    return out


def main(argv: list[str]) -> int:
    design = argv[0] if argv else "wanedit-events"
    logs = ROOT / "bench" / "logs"
    run = json.loads((logs / f"{design}-run.json").read_text())
    looked = first_lines(logs / f"{design}-receiver.log", LOOKING, 3)
    seen = first_lines(logs / f"{design}-worker.log", SEEN, 2)
    print(f"{design}: seconds per task, tasks that ended while the backlog waited")
    print(f"{'segment':<26}{'tasks':>6}{'mean':>8}{'p50':>8}{'p95':>8}")
    total = 0.0
    for name, values in segments(run, looked, seen).items():
        if not values:
            print(f"{name:<26}{0:>6}")
            continue
        mean = statistics.fmean(values)
        total += mean
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(f"{name:<26}{len(values):>6}{mean:>8.3f}{p50:>8.3f}{p95:>8.3f}")
    print(f"{'end -> next create':<26}{'':>6}{total:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
