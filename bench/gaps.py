"""Where a run's idle provider slot time went, from `bench/logs/` of the last wanedit run.

    python -m bench.gaps [bench/logs/wanedit-run.json] [bench/logs/wanedit-worker.log]

Capacity is C slots x run time; busy is the sum of the provider's own task durations. The rest
is idle, split into:

- start: from the first enqueue to each of the first C tasks' start (the first creates go out
  1/R s apart);
- steady gaps: each later task's start minus the end of the task whose slot it took (slots are
  matched in end order), split at the moment a worker saw the end (its log line) into waiting
  for a look and the way from there to the provider starting the next task;
- end: the last task's end minus each other slot's last end, plus the time to its event.
"""

from __future__ import annotations

import heapq
import json
import re
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): [^\]]*\] "
# The first line that shows a worker knew a task had ended.
SEEN = re.compile(
    STAMP + r"job (\w{32}): (?:ended at the provider; its slot|provider succeeded, copying)"
)


def _time(text: str) -> float:
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    return moment.timestamp()


def seen_times(log: Path) -> dict[str, float]:
    seen: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = SEEN.match(line)
        if match:
            seen.setdefault(match[2], _time(match[1]))
    return seen


def describe(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[int(q * (len(ordered) - 1))]

    return (
        f"mean {statistics.fmean(ordered):.3f} s, p10 {at(0.1):.3f}, p50 {at(0.5):.3f}, "
        f"p90 {at(0.9):.3f}; total {sum(ordered):.1f} slot-s"
    )


def main(run_path: Path, log_path: Path, slots: int = 5) -> None:
    run = json.loads(run_path.read_text())
    seen = seen_times(log_path)
    edits = sorted(
        (e for e in run["edits"] if e["provider_scheduled"] and e["provider_end"]),
        key=lambda e: e["provider_scheduled"],
    )
    start_at, finished_at = run["started_at"], run["finished_at"]
    running: list[tuple[float, str]] = []
    gaps: list[float] = []
    looking: list[float] = []
    after: list[float] = []
    for index, edit in enumerate(edits):
        if index >= slots:
            end, job_id = heapq.heappop(running)
            gaps.append(edit["provider_scheduled"] - end)
            if job_id in seen:
                looking.append(seen[job_id] - end)
                after.append(edit["provider_scheduled"] - seen[job_id])
        heapq.heappush(running, (edit["provider_end"], edit["job_id"]))
    last_end = max(end for end, _ in running)
    busy = sum(e["provider_end"] - e["provider_scheduled"] for e in edits)
    capacity = slots * (finished_at - start_at)
    start = sum(e["provider_scheduled"] - start_at for e in edits[:slots])
    end = sum(last_end - e for e, _ in running) + slots * (finished_at - last_end)
    print(f"{len(edits)} tasks on {slots} slots, run {finished_at - start_at:.1f} s")
    print(f"capacity {capacity:.1f} slot-s, busy {busy:.1f}, idle {capacity - busy:.1f}")
    print(f"  start: {start:.1f} slot-s")
    print(f"  steady gaps: {describe(gaps)}")
    print(f"    waiting for the look that saw the end: {describe(looking)}")
    print(f"    from there to the next task's start: {describe(after)}")
    print(f"  end: {end:.1f} slot-s")
    print(f"utilization of slot time: {busy / capacity:.3f}")


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]]
    main(
        args[0] if args else ROOT / "bench" / "logs" / "wanedit-run.json",
        args[1] if len(args) > 1 else ROOT / "bench" / "logs" / "wanedit-worker.log",
    )
