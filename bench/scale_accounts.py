"""Figures 3 and 4: one worker machine (one worker, 2 processes) driving 1 and then N provider
accounts on the sandbox at the same task durations, and the naive design's CPU per edit under
the 1-account workload, in the same run (the designs of `make bench`, unchanged)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.common import RunResult, Workload
from bench.figures import Figures, compute


@dataclass(frozen=True)
class AccountsRun:
    label: str
    workload: Workload
    run: RunResult
    figures: Figures


def workload_for(
    accounts: int, *, edits_per_account: int, duration: tuple[float, float]
) -> Workload:
    """The same backlog per account (so ramp-up and tail weigh the same), no interactive edits."""
    return Workload(
        edits=edits_per_account * accounts,
        interactive=0,
        accounts=accounts,
        duration_min=duration[0],
        duration_max=duration[1],
    )


def measure_accounts(
    accounts: int,
    *,
    edits_per_account: int,
    duration: tuple[float, float],
    naive_edits: int,
    log_dir: Path,
    say: Callable[[str], None],
) -> list[AccountsRun]:
    """wanedit on 1 account, on `accounts` accounts, then the naive design (1 account,
    `naive_edits` edits: it runs 2 at a time, so a backlog as long as wanedit's would take
    far longer; CPU per edit does not depend on the backlog's length)."""
    from bench.naive_run import run_naive
    from bench.wanedit_run import run_wanedit

    runs = []
    for count in (1, accounts):
        workload = workload_for(count, edits_per_account=edits_per_account, duration=duration)
        say(f"accounts: wanedit, {count} account(s), {workload.edits} edits")
        run = run_wanedit(workload, log_dir, say)
        runs.append(
            AccountsRun(f"wanedit, {count} account(s)", workload, run, compute(run, workload))
        )
    if naive_edits:
        workload = replace(runs[0].workload, edits=naive_edits)
        say(f"accounts: naive, 1 account, {workload.edits} edits")
        run = run_naive(workload, log_dir, say)
        runs.append(AccountsRun("naive, 1 account", workload, run, compute(run, workload)))
    return runs


if __name__ == "__main__":
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    log_dir = Path(__file__).resolve().parent / "logs"
    log_dir.mkdir(exist_ok=True)
    for item in measure_accounts(
        count, edits_per_account=per, duration=(4.0, 8.0), naive_edits=0, log_dir=log_dir, say=print
    ):
        f = item.figures
        print(
            item.label,
            f"{f.throughput:.3f}/s util {f.utilization} cpu/edit {f.cpu_per_edit:.4f} "
            f"window {f.window:.1f} ok {f.succeeded}/{f.edits} polls/edit {f.polls_per_edit:.2f}",
        )
