"""SCALE.md and its plot: every figure of one `make bench-scale` run, with its target."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from bench.report import machine
from bench.scale_accounts import DrainFigures, NaiveFigures
from bench.scale_backlog import STEPS, StepCost
from bench.scale_enqueue import EnqueueFigures

KB = 2048
STEP_RATIO_MAX = 1.5
ACCOUNTS_RATIO_MIN = 9.5
LINES_PER_SECOND_MIN = 2000


@dataclass(frozen=True)
class Target:
    figure: str
    rule: str
    measured: str
    passed: bool | None
    miss: str = ""  # by how much, when missed

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "MISS")


@dataclass
class ScaleRun:
    command: str
    code: str
    enqueue: list[EnqueueFigures]
    steps: list[StepCost]
    drains: list[DrainFigures]
    naive: NaiveFigures | None
    duration: tuple[float, float]
    seconds: float


def _chunked(run: ScaleRun) -> EnqueueFigures | None:
    chunked = [e for e in run.enqueue if e.path == "chunked"]
    return max(chunked, key=lambda e: e.lines) if chunked else None


def _step_ratios(run: ScaleRun) -> list[tuple[str, StepCost, StepCost]]:
    sizes = sorted({c.backlog for c in run.steps})
    if len(sizes) < 2:
        return []
    small, large = sizes[0], sizes[-1]
    by = {(c.step, c.backlog): c for c in run.steps}
    return [(step, by[step, small], by[step, large]) for step in STEPS if (step, small) in by]


def targets(run: ScaleRun) -> list[Target]:
    out: list[Target] = []
    big = _chunked(run)
    if big is not None:
        rate = big.lines_per_second
        out.append(
            Target(
                f"enqueue {big.lines:,}-line manifest",
                f">= {LINES_PER_SECOND_MIN:,} lines/s",
                f"{rate:,.0f} lines/s",
                rate >= LINES_PER_SECOND_MIN,
                "" if rate >= LINES_PER_SECOND_MIN else f"{1 - rate / LINES_PER_SECOND_MIN:.0%}",
            )
        )
        for name, value in (
            ("Redis used_memory growth per queued job", big.bytes_per_job),
            ("MEMORY USAGE of a job record (mean)", big.record_bytes_mean),
        ):
            out.append(
                Target(
                    name,
                    "<= 2 KB (2,048 B)",
                    f"{value:,.0f} B",
                    value <= KB,
                    "" if value <= KB else f"{value / KB - 1:.0%}",
                )
            )
    for step, small, large in _step_ratios(run):
        ratio = large.median_s / small.median_s
        out.append(
            Target(
                f"{step}: time per call, {large.backlog:,} / {small.backlog:,} backlog",
                f"<= {STEP_RATIO_MAX}x",
                f"{ratio:.2f}x",
                ratio <= STEP_RATIO_MAX,
                "" if ratio <= STEP_RATIO_MAX else f"{ratio / STEP_RATIO_MAX - 1:.0%}",
            )
        )
    if len(run.drains) >= 2:
        one, many = run.drains[0], run.drains[-1]
        ratio = many.throughput / one.throughput if one.throughput else 0.0
        want = ACCOUNTS_RATIO_MIN * many.accounts / 10
        out.append(
            Target(
                f"throughput, {many.accounts} accounts / 1 account",
                f">= {want:g}x",
                f"{ratio:.2f}x",
                ratio >= want,
                "" if ratio >= want else f"{1 - ratio / want:.0%}",
            )
        )
    if run.naive is not None and run.drains:
        ours = run.drains[0].cpu_per_edit
        naive = run.naive.cpu_per_edit
        out.append(
            Target(
                "worker CPU per edit, wanedit (1 account) vs naive",
                f"<= naive ({naive:.3f} s)",
                f"{ours:.3f} s ({ours / naive:.2f}x)",
                ours <= naive,
                "" if ours <= naive else f"{ours / naive - 1:.0%}",
            )
        )
    return out


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def render(run: ScaleRun, plot_name: str) -> str:
    low, high = run.duration
    lines = [
        "# Scale benchmark results",
        "",
        f"Written by `make bench-scale` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"in {run.seconds / 60:.1f} minutes. Every figure below was measured in this run.",
        "",
        "## Machine",
        "",
        *machine(),
        f"- code: {run.code}",
        "",
        "The machine's 2 cores were shared with other work during the run: absolute times are "
        "noisy, ratios within the run less so.",
        "",
        "## Command",
        "",
        "```sh",
        run.command,
        "```",
        "",
        f"![scale figures]({plot_name})",
        "",
        "## Targets",
        "",
        "| figure | target | measured | result | missed by |",
        "|---|---|---|---|---|",
    ]
    for t in targets(run):
        lines.append(f"| {t.figure} | {t.rule} | {t.measured} | {t.verdict} | {t.miss or '-'} |")
    if run.enqueue:
        lines += [
            "",
            "## 1. Enqueueing a manifest",
            "",
            "A JSONL manifest of URL-input edits (one line in 1,000 has no prompt, on purpose: it "
            "is reported and the batch goes on), enqueued on a fresh embedded Redis and moto S3 "
            "by `run_batch`, the path `wanedit batch` runs (`chunked`: 200 lines at a time, one "
            "look-up of their idempotency keys and one create script call), and by "
            "`enqueue_line` one line at a time (`per line`: the path before chunks; scheduled "
            "batches' chunks still take it, line by line under their run lock). Time runs from "
            "the start (the manifest is read twice: its digest names the batch) to the last line "
            "handled; the batch status that follows (read from every job record) is shown apart. "
            "Memory: `used_memory` growth over the whole enqueue / jobs enqueued (job records, "
            "idempotency keys, the backlog and the batch's own line records), and `MEMORY USAGE "
            "<job> SAMPLES 0` of 1,000 job records.",
            "",
            "| path | lines | enqueued | invalid | seconds | lines/s | then status (s) "
            "| used_memory growth / job (B) | job record mean / max (B) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for e in run.enqueue:
            lines.append(
                f"| {e.path} | {e.lines:,} | {e.enqueued:,} | {e.invalid:,} | {e.seconds:.2f} "
                f"| {e.lines_per_second:,.0f} | {e.status_seconds:.2f} | {e.bytes_per_job:,.0f} "
                f"| {e.record_bytes_mean:,.0f} / {e.record_bytes_max:,} |"
            )
        for p in (e for e in run.enqueue if e.path == "per line"):
            for c in (e for e in run.enqueue if e.path == "chunked" and e.lines == p.lines):
                lines += [
                    "",
                    f"On the same {p.lines:,} lines, chunked / per line: "
                    f"{c.lines_per_second / p.lines_per_second:.1f}x the lines per second.",
                ]
    if run.steps:
        lines += [
            "",
            "## 2. Admission, the list watch and the sweeper against the backlog",
            "",
            "The real step functions, called in this process against a real embedded Redis with "
            "the backlog loaded (queued batch jobs), one account on the provider sandbox with 5 "
            "tasks in flight (an hour long) for the watch and the sweeper. Admission runs with "
            "its 5 slots taken back before each call (their leases expired: it reclaims them "
            "and admits 5 jobs again). Messages the steps send go to the run's Redis; no worker "
            "takes them. Each backlog has its own keys in the same Redis and its own sandbox key, "
            "and the calls alternate between the backlogs, so the machine's noise falls on both "
            "alike. Time per call: median (and mean) of the calls.",
            "",
            "| step | what a call does | backlog | calls | median (ms) | mean (ms) |",
            "|---|---|---|---|---|---|",
        ]
        for cost in run.steps:
            lines.append(
                f"| {cost.step} | {STEPS[cost.step]} | {cost.backlog:,} | {cost.calls} "
                f"| {cost.median_s * 1000:.2f} | {cost.mean_s * 1000:.2f} |"
            )
    if run.drains:
        lines += [
            "",
            "## 3. Accounts driven by one worker machine",
            "",
            f"One worker (`celery ... worker --concurrency 2`), the sandbox with the provider's "
            f"limits per account (5 tasks at once, 5 creates/s, 20 queries/s), task durations "
            f"{low:g} to {high:g} s (the real 30 to 120 s scaled down; wanedit's time settings "
            "scaled alike, as in `make bench`). The same backlog per account, enqueued before "
            "the worker starts; time from the worker ready to the last completion event. "
            "Capacity: 5 x accounts / mean task duration (the provider's own times).",
            "",
            "| run | edits | succeeded | seconds | mean task (s) | throughput (edits/s) "
            "| of capacity | polls / edit | peak running | worker CPU / edit (s) "
            "| of which main process |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for d in run.drains:
            lines.append(
                f"| {d.label} | {d.edits} | {d.succeeded} | {d.seconds:.1f} | {_f(d.mean_task)} "
                f"| {d.throughput:.3f} | {_f(d.utilization)} | {d.queries / max(d.edits, 1):.2f} "
                f"| {d.max_running} | {d.cpu_per_edit:.3f} "
                f"| {d.main_cpu_seconds / max(d.edits, 1):.3f} |"
            )
    if run.naive is not None:
        lines += [
            "",
            "## 4. Worker CPU per edit",
            "",
            f"`make bench`'s naive design (a Celery task blocking on the SDK's `call`, "
            f"concurrency 2) on the 1-account workload's durations, {run.naive.edits} edits "
            f"(it runs 2 at a time): {run.naive.cpu_per_edit:.3f} s of CPU per edit (user + "
            "system of the worker's process tree, psutil, as `make bench` measures it), mean "
            f"task {_f(run.naive.mean_task)} s.",
        ]
    lines.append("")
    return "\n".join(lines)


def plot(run: ScaleRun, path: Path) -> None:
    panels = [bool(run.enqueue), bool(run.steps), bool(run.drains)]
    count = max(sum(panels), 1)
    fig, axes = plt.subplots(1, count, figsize=(5.2 * count, 4.4), squeeze=False)
    ax_iter = iter(axes[0])
    if run.enqueue:
        ax = next(ax_iter)
        labels = [f"{e.path}\n{e.lines:,} lines" for e in run.enqueue]
        ax.bar(labels, [e.lines_per_second for e in run.enqueue], color="tab:blue")
        ax.axhline(LINES_PER_SECOND_MIN, color="tab:red", linestyle="--", label="target")
        ax.set_ylabel("lines enqueued per second")
        ax.set_title("1. Enqueueing a manifest")
        ax.legend()
    if run.steps:
        ax = next(ax_iter)
        sizes = sorted({c.backlog for c in run.steps})
        width = 0.8 / len(sizes)
        for k, size in enumerate(sizes):
            values = [
                next(c.median_s * 1000 for c in run.steps if c.step == s and c.backlog == size)
                for s in STEPS
            ]
            xs = [i + (k - (len(sizes) - 1) / 2) * width for i in range(len(STEPS))]
            ax.bar(xs, values, width, label=f"backlog {size:,}")
        ax.set_xticks(range(len(STEPS)), list(STEPS))
        ax.set_ylabel("median time per call (ms)")
        ax.set_title("2. Step cost against the backlog")
        ax.legend()
    if run.drains:
        ax = next(ax_iter)
        labels = [f"{d.accounts} account{'s' if d.accounts > 1 else ''}" for d in run.drains]
        ax.bar(labels, [d.throughput for d in run.drains], color="tab:green", label="measured")
        capacity = [d.capacity or 0 for d in run.drains]
        ax.plot(labels, capacity, "k_", markersize=40, markeredgewidth=2, label="capacity")
        one = run.drains[0].throughput
        ax.plot(
            labels,
            [one * ACCOUNTS_RATIO_MIN / 10 * d.accounts for d in run.drains],
            "r_",
            markersize=40,
            markeredgewidth=2,
            label="target (9.5x per 10 accounts)",
        )
        ax.set_ylabel("edits per second")
        ax.set_title("3. One worker, more accounts")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
