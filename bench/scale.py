"""`make bench-scale`: the scale figures, each measured in one run, reported in bench/SCALE.md.

    python -m bench.scale [--quick] [--only enqueue|backlog|accounts] [--out bench/SCALE.md]

1. a 100,000-line manifest of URL inputs enqueued as a batch (and 10,000 lines one at a time,
   the path before chunks): lines per second, Redis memory per queued job;
2. admission, the list watch and the sweeper at a 100,000-job backlog against a 1,000-job one;
3. one worker (2 processes) driving 1 and 10 provider accounts on the sandbox;
4. the worker's CPU per edit against the naive design's, in the same run.

`--quick` runs every part small (a smoke run, about 3 minutes; its figures do not measure scale).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path

from bench.report import describe_code
from bench.scale_report import ScaleRun, plot, render, targets

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("enqueue", "backlog", "accounts")


def _duration(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    bounds = (float(low), float(high or low))
    if not 0 < bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError("use MIN:MAX seconds with 0 < MIN <= MAX, e.g. 8:24")
    return bounds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="every part small: a smoke run")
    parser.add_argument("--only", choices=PARTS, action="append", help="run this part (repeatable)")
    parser.add_argument("--lines", type=int, default=100_000, help="manifest lines (chunked)")
    parser.add_argument("--per-line-lines", type=int, default=10_000, help="lines one at a time")
    parser.add_argument("--backlog", type=int, default=100_000, help="the large backlog")
    parser.add_argument("--calls", type=int, default=200, help="calls of each step per backlog")
    parser.add_argument("--accounts", type=int, default=10, help="accounts in the large run")
    parser.add_argument("--edits-per-account", type=int, default=30)
    parser.add_argument("--naive-edits", type=int, default=20)
    parser.add_argument("--duration", type=_duration, default=(8.0, 24.0), help="task MIN:MAX s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "SCALE.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.lines, args.per_line_lines, args.backlog, args.calls = 5000, 1000, 5000, 30
        args.accounts, args.edits_per_account, args.naive_edits = 2, 6, 4
        args.duration = (2.0, 4.0)
    return args


def _say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = set(args.only or PARTS)
    out: Path = args.out.resolve()
    plot_path = out.with_name(out.stem.lower() + ".png")  # SCALE.md: scale.png
    log_dir = ROOT / "bench" / "logs"
    log_dir.mkdir(exist_ok=True)
    logging.getLogger("wanedit").setLevel(logging.ERROR)  # no line per job of this process
    code = describe_code(ROOT, (out, plot_path))
    started = time.monotonic()
    python = sys.executable
    if Path(python).is_relative_to(ROOT):
        python = str(Path(python).relative_to(ROOT))
    command = shlex.join([python, "-m", "bench.scale", *(sys.argv[1:] if argv is None else argv)])
    run = ScaleRun(command, code, [], [], [], None, args.duration, 0.0)

    if "enqueue" in parts:
        from bench.scale_enqueue import measure_enqueue

        workdir = Path(tempfile.mkdtemp(prefix="wanedit-scale-"))
        for lines, per_line in ((args.per_line_lines, True), (args.per_line_lines, False),
                                (args.lines, False)):  # fmt: skip
            if not per_line and lines == args.per_line_lines and lines == args.lines:
                continue
            _say(f"enqueue: {lines:,} lines, {'per line' if per_line else 'chunked'}")
            figures = measure_enqueue(lines, workdir, per_line=per_line)
            _say(f"  {figures.lines_per_second:,.0f} lines/s, {figures.bytes_per_job:,.0f} B/job")
            run.enqueue.append(figures)
    if "backlog" in parts:
        from bench.scale_backlog import measure_backlog

        _say(f"backlog: 1,000 and {args.backlog:,} jobs, {args.calls} calls of each step")
        run.steps = measure_backlog((1000, args.backlog), args.calls)
        for cost in run.steps:
            _say(f"  {cost.step} at {cost.backlog:,}: {cost.median_s * 1000:.2f} ms median")
    if "accounts" in parts:
        from bench.scale_accounts import drain, naive_cpu, workload_for

        for count in (1, args.accounts):
            workload = workload_for(
                count, edits_per_account=args.edits_per_account, duration=args.duration
            )
            _say(f"accounts: {count}, {workload.edits} edits, tasks {args.duration} s")
            drained = drain(workload, log_dir, _say)
            _say(f"  {drained.throughput:.3f} edits/s, {drained.cpu_per_edit:.3f} s CPU/edit")
            run.drains.append(drained)
        if args.naive_edits:
            workload = workload_for(1, edits_per_account=args.naive_edits, duration=args.duration)
            _say(f"naive: {workload.edits} edits")
            run.naive = naive_cpu(workload, log_dir, _say)
            _say(f"  {run.naive.cpu_per_edit:.3f} s CPU/edit")

    run.seconds = time.monotonic() - started
    plot(run, plot_path)
    out.write_text(render(run, plot_path.name))
    _say("")
    for t in targets(run):
        _say(
            f"{t.verdict:4}  {t.figure}: {t.measured} ({t.rule})"
            + (f", missed by {t.miss}" if t.miss else "")
        )
    _say(f"\nwrote {out} and {plot_path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every server and worker started was stopped", file=sys.stderr)
        sys.exit(130)
