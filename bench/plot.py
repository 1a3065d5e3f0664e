"""The in-flight plot: provider tasks in flight and our queue depth over time, per design."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from bench.common import RunResult, Workload

COLORS = {
    "wanedit-events": "tab:green",
    "wanedit": "tab:blue",
    "naive": "tab:orange",
    "events-10pct-lost": "tab:red",
}


def plot_inflight(runs: list[RunResult], workload: Workload, path: Path) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    for run in runs:
        color = COLORS.get(run.design)
        t = [s.t - run.started_at for s in run.samples]
        top.plot(
            t,
            [s.running + s.pending for s in run.samples],
            color=color,
            linewidth=2.4,
            alpha=0.45,
            label=f"{run.design}: RUNNING + PENDING",
        )
        top.plot(
            t,
            [s.running for s in run.samples],
            color=color,
            linestyle=":",
            label=f"{run.design}: RUNNING only",
        )
        bottom.plot(t, [s.depth for s in run.samples], color=color, label=run.design)
        for edit in run.edits:
            if edit.kind == "interactive":
                bottom.axvline(
                    edit.submitted_at - run.started_at, color=color, alpha=0.25, linewidth=0.8
                )
        capacity = workload.concurrency * run.accounts
        top.axhline(capacity, color=color, linestyle="--", linewidth=0.8, alpha=0.6)
    top.set_ylabel("provider tasks in flight")
    top.set_title(
        f"Provider tasks in flight (dashed: C x accounts) - {workload.edits} batch + "
        f"{workload.interactive} interactive edits, task duration "
        f"{workload.duration_min:g}-{workload.duration_max:g} s"
    )
    top.legend(loc="upper right", fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_ylabel("edits waiting in our queue")
    bottom.set_xlabel("seconds since the backlog was enqueued")
    bottom.set_title("Queue depth (thin vertical lines: interactive edits sent)")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
