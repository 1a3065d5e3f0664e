"""RESULTS.md: the machine, the command, the figures of both designs and the targets."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RunResult, Workload
from bench.designs import Design
from bench.figures import Figures, design_targets, verdict


@dataclass(frozen=True)
class Row:
    label: str
    value: Callable[[Figures], float | int | str | None]
    digits: int = 2
    ratio: bool = True


ROWS = (
    Row("edits (batch + interactive)", lambda f: f.edits, 0, False),
    Row(
        "succeeded / failed / unfinished",
        lambda f: f"{f.succeeded} / {f.failed} / {f.unfinished}",
        ratio=False,
    ),
    Row("run time, first enqueue to last completion event (s)", lambda f: f.window, 1),
    Row("mean task duration, provider end_time - scheduled_time (s)", lambda f: f.mean_task),
    Row("provider capacity, C x accounts / mean task (edits/s)", lambda f: f.capacity, 3),
    Row("achieved edits/s (succeeded / run time)", lambda f: f.throughput, 3),
    Row("**quota utilization**", lambda f: f.utilization, 3),
    Row("backlog window, first create to last create (s)", lambda f: f.busy_window, 1),
    Row(
        "**utilization while the backlog waits** (RUNNING slot-s / C x accounts x window)",
        lambda f: f.busy_utilization,
        3,
    ),
    Row("idle slot-seconds while the backlog waits", lambda f: f.idle_slot_seconds, 1),
    Row("interactive latency p50, submit to event (s)", lambda f: f.interactive_p50),
    Row("**interactive latency p95** (s)", lambda f: f.interactive_p95),
    Row("interactive p95 / mean task duration", lambda f: f.interactive_p95_ratio),
    Row("task duration p95, interactive edits only (s)", lambda f: f.interactive_task_p95),
    Row(
        "interactive wait for a slot p95, submit to the provider's start (s)",
        lambda f: f.interactive_wait_p95,
    ),
    Row("task duration p95, every edit (s)", lambda f: f.task_p95),
    Row("provider status queries (task queries + list calls)", lambda f: f.queries, 0),
    Row("**provider queries per edit** (queries / edits)", lambda f: f.polls_per_edit),
    Row("completion lag p50, provider end_time to event (s)", lambda f: f.lag_p50),
    Row("**completion lag p95** (s)", lambda f: f.lag_p95),
    Row("event POST p95, sandbox's task end to its send (s)", lambda f: f.event_send_p95),
    Row("tasks whose event never arrived (lost or failed)", lambda f: f.missed_events, 0),
    Row("completion lag mean, tasks without an event (s)", lambda f: f.lag_missed_mean),
    Row("completion lag mean, tasks with an event (s)", lambda f: f.lag_delivered_mean),
    Row("429 answers sent by the provider", lambda f: f.throttled, 0),
    Row("failures surfaced to users", lambda f: f.failed, 0),
    Row("... of which from throttling", lambda f: f.throttling_failures, 0),
    Row("jobs lost (no completion event)", lambda f: f.unfinished, 0),
    Row("worker CPU s per edit (user + system, process tree)", lambda f: f.cpu_per_edit, 3),
    Row("worker peak memory, summed RSS of the tree (MiB)", lambda f: f.peak_rss_mib, 0),
    Row(
        "provider events sent / lost / duplicated / failed",
        lambda f: (
            None
            if f.events is None
            else " / ".join(
                str(f.events.get(f"events_{k}", "n/a"))
                for k in ("sent", "lost", "duplicated", "failed")
            )
        ),
        ratio=False,
    ),
    Row(
        "most provider tasks RUNNING at once, per account",
        lambda f: ", ".join(f"{k}: {v}" for k, v in sorted(f.max_running.items())) or "none",
        ratio=False,
    ),
)


def cell(value: float | int | str | None, digits: int) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}" if digits else f"{value:.0f}"


def _ratio(a: float | int | str | None, b: float | int | str | None) -> str:
    if isinstance(a, str) or isinstance(b, str) or a is None or b is None:
        return "n/a"
    if b == 0:
        return "n/a (naive 0)" if a else "= (both 0)"
    return f"{a / b:.2f}x"


def table(figures: dict[str, Figures]) -> list[str]:
    designs = list(figures)
    both = "wanedit" in figures and "naive" in figures
    header = "| figure | " + " | ".join(designs) + (" | wanedit / naive |" if both else " |")
    lines = [header, "|---" * (len(designs) + 1 + both) + "|"]
    for row in ROWS:
        values = [row.value(figures[d]) for d in designs]
        cells = [cell(v, row.digits) for v in values]
        if both:
            pair = (row.value(figures["wanedit"]), row.value(figures["naive"]))
            cells.append(_ratio(*pair) if row.ratio else "")
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return lines


def why(f: Figures, missed: set[str]) -> list[str]:
    """What this run's own figures say about the targets it missed."""
    out: list[str] = []
    if "interactive latency p95" in missed and f.interactive_task_p95 is not None:
        out.append(
            f"interactive latency p95 {cell(f.interactive_p95, 2)} s: it includes the task "
            f"itself, and the interactive edits' own task durations have a p95 of "
            f"{f.interactive_task_p95:.2f} s in this run, which no design can go below; the "
            "rest is the wait for a slot (interactive edits go first, but each waits for "
            "a running task to end: the provider does not preempt"
            + (
                f"; p95 {f.interactive_wait_p95:.2f} s"
                if f.interactive_wait_p95 is not None
                else ""
            )
            + ") and the completion lag."
        )
    if "utilization while the backlog waits" in missed and f.idle_slot_seconds is not None:
        text = (
            f"utilization while the backlog waits {cell(f.busy_utilization, 3)}: "
            f"{f.idle_slot_seconds:.1f} idle slot-seconds in a {cell(f.busy_window, 1)} s window"
        )
        if f.missed_events and f.lag_missed_mean is not None:
            held = f.missed_events * f.lag_missed_mean
            text += (
                f"; the {f.missed_events} tasks whose event never arrived were seen on average "
                f"{f.lag_missed_mean:.2f} s after they ended (by a safety-net look, or the list "
                "watch that a missed event turns back on), "
                f"about {held:.1f} slot-seconds"
            )
        if f.event_send_p95 is not None:
            text += (
                f"; each other task's slot idles from its end through the event "
                f"(sent {cell(f.event_send_p95, 2)} s after the end at p95), the result query "
                "and the next create, which a short task feels most"
            )
        out.append(text + ".")
    return out


def target_tables(designs: list[Design], figures: dict[str, Figures]) -> list[str]:
    out: list[str] = []
    for design in designs:
        found = design_targets(design, figures[design.name])
        if not found:
            continue
        out += [
            f"## Targets ({design.name})",
            "",
            "| target | rule | measured | result |",
            "|---|---|---|---|",
        ]
        for t in found:
            measured = t.value + (f" ({t.beside})" if t.beside else "")
            result = verdict(t)
            out.append(
                f"| {t.name} | {t.rule} | {measured} | "
                f"{result if t.passed is not False else '**' + result + '**'} |"
            )
        out.append("")
        reasons = why(figures[design.name], {t.name for t in found if t.passed is False})
        if reasons:
            out += ["Where the misses come from, in this run's figures:", ""]
            out += [f"- {reason}" for reason in reasons]
            out.append("")
    return out


def machine() -> list[str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return [
        f"- CPUs (`nproc`): {len(os.sched_getaffinity(0))}",
        f"- CPU model: {cpu}",
        f"- memory: {mem_kib / 2**20:.1f} GiB",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- kernel: {platform.system()} {platform.release()}",
    ]


def describe_code(root: Path, outputs: tuple[Path, ...] = ()) -> str:
    """The commit, and whether other files than this report's outputs differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
        ).stdout.splitlines()
    except OSError:
        return "unknown"
    ours = {str(p.resolve().relative_to(root)) for p in outputs if p.resolve().is_relative_to(root)}
    # Other reports (an earlier run's RESULTS-x.md and its plot) are results, not code.
    dirty = [
        line
        for line in changed
        if line[3:].strip() not in ours and not _is_report(line[3:].strip())
    ]
    return (head or "unknown") + (" with uncommitted changes" if dirty else "")


def _is_report(path: str) -> bool:
    name = Path(path).name
    return path.startswith("bench/") and (
        (name.startswith("RESULTS") and name.endswith(".md"))
        or (name.startswith("inflight") and name.endswith(".png"))
    )


def render(
    runs: list[RunResult],
    figures: dict[str, Figures],
    designs: list[Design],
    workload: Workload,
    command: str,
    plot_name: str,
    code: str,
) -> str:
    w = workload
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# wanedit benchmark results",
        "",
        f"Written by `bench/run.py` on {now}, code at {code} when the run started. "
        "Every number below was measured in this run.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Command",
        "",
        "```sh",
        command,
        "```",
        "",
        "## Workload",
        "",
        f"- Provider sandbox with the real limits: C={w.concurrency} tasks at once, "
        f"R={w.submit_rate:g} submissions/s and Q={w.query_rate:g} queries/s per account; task "
        f"durations drawn from {w.duration_min:g} to {w.duration_max:g} s (seed {w.seed}).",
        "- The sandbox answers as the provider documents (docs/dashscope.md): task-list rows keyed "
        "`status` with epoch-millisecond times, time strings and list filters in Beijing time "
        "(UTC+8); wanedit reads every list page up to `total_page`.",
        f"- Accounts: wanedit {w.accounts}, naive 1.",
        f"- {w.edits} batch edits enqueued at once, then {w.interactive} interactive edits, the "
        f"first {w.interactive_start:g} s after the backlog was enqueued, then one every "
        f"{w.interactive_every:g} s.",
        "- Each edit: one 640x640 PNG input in S3 (passed to the provider as a presigned URL), "
        "n=1.",
        f"- Each design on fresh embedded servers (valkey-server, moto S3, sandbox), one worker "
        f"with `--concurrency {w.worker_concurrency}` (prefork).",
        "- wanedit: `celery -A wanedit.workers worker`, fed with "
        "`wanedit.producers.submit_edit`. naive: "
        "`celery -A bench.naive worker`, one task per edit blocking on "
        "`dashscope.ImageSynthesis.call`, plain FIFO queue.",
        *_events_workload(runs),
        "",
        "Designs in this run:",
        "",
        *(f"- `{d.name}`: {d.summary}." for d in designs),
        "",
        "## Figures",
        "",
        *table(figures),
        "",
        *target_tables(designs, figures),
    ]
    out += [
        "## In flight over time",
        "",
        f"![provider tasks in flight and queue depth]({plot_name})",
        "",
        "Sampled every 0.5 s: provider tasks RUNNING + PENDING from the sandbox's own counters, "
        "and the edits waiting in our queue.",
        "",
    ]
    for run in runs:
        out.append(f"- {run.design}: queue depth is {run.depth_source}.")
    notes = [f"{run.design}: {note}" for run in runs for note in run.notes]
    if notes:
        out += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    out += ["", "## How each figure is computed", "", *DEFINITIONS, ""]
    return "\n".join(out)


def _events_workload(runs: list[RunResult]) -> list[str]:
    delays = sorted({run.event_delay for run in runs if run.event_delay is not None})
    if not delays:
        return []
    return [
        "- Events designs: the sandbox posts a CloudEvents `dashscope:System:AsyncTaskFinish` "
        "event for each task that ends to a `wanedit provider-events` receiver on a free port "
        "(token in the URL's query string), "
        + " / ".join(f"{d:g}" for d in delays)
        + " s after the task ends. That delay is the benchmark's assumption: the provider "
        "documents that events arrive as soon as the task ends, with no figure. The worker "
        "runs with `WANEDIT_PROVIDER_EVENTS=true`."
    ]


DEFINITIONS = [
    "- **mean task duration**: mean of `end_time - scheduled_time` as the provider reports them "
    "(wanedit: the job record's `provider_times`; naive: the SDK answer's `output`), over the "
    "edits that ended.",
    "- **quota utilization**: succeeded edits / (last completion event - first enqueue), "
    "divided by C x accounts / mean task duration.",
    "- **interactive latency**: completion event time (the Redis stream entry id) minus the "
    "time just before the interactive edit was submitted; p50/p95 by linear interpolation.",
    "- **utilization while the backlog waits**: the provider's RUNNING slot-seconds (each "
    "task's start and end as the sandbox timed them, read from its task list after the run) "
    "inside the window from the first create to the last one, divided by C x accounts x that "
    "window. Until the last create an edit still waited in our backlog, so an idle slot was "
    "time a design could have used; the end-to-end **quota utilization** also counts the "
    "ramp-up (the first creates 1/R s apart) and the tail (the last tasks run while the other "
    "slots have nothing left), which no design can fill.",
    "- **task duration p95**: of `end_time - scheduled_time`; over the interactive edits, it "
    "bounds their latency p95 from below, as that latency includes the task itself. "
    "**Interactive wait for a slot**: the provider's `scheduled_time` minus the submit time.",
    "- **provider queries per edit**: the sandbox's counts of `GET /tasks/{id}` and "
    "`GET /tasks` (list) calls, 429s included, / edits.",
    "- **completion lag**: completion event time minus the provider's `end_time`, over the "
    "succeeded edits.",
    "- **jobs lost**: edits with no completion event when the run ended.",
    "- **event POST**: the sandbox's record of each event delivery (`GET /sandbox/events`): "
    "its send time minus the task's end. A task whose event never arrived had every copy "
    "dropped (`event_loss_rate`) or given up after retries; its completion lag is compared "
    "with the other tasks' (wanedit then learns of the end by looking).",
    "- **provider events**: the sandbox's `events_sent`, `events_lost` (dropped on purpose), "
    "`events_duplicated` and `events_failed` (the receiver did not take it) counters.",
    "- **429 answers**: the sandbox's `throttled` counter. **Failures surfaced**: edits whose "
    "completion event says failed; *from throttling*: their error code starts with "
    "`Throttling`.",
    "- **worker CPU per edit**: user + system CPU of the worker process and all its "
    "descendants (psutil, ended children included) from just before the first enqueue to the "
    "last event, divided by the edits. **Peak memory**: the largest summed RSS of that tree, "
    "sampled every 0.5 s (shared pages of the prefork children are counted in each).",
]
