"""`make bench`: wanedit with and without the provider's events, and the naive design, side by side.

    python -m bench.run [--edits 200] [--interactive 10] [--accounts 1] [--duration 8:24]
                        [--only wanedit-events,wanedit,naive,events-10pct-lost]
                        [--event-delay 0.05] [--quick] [--out bench/RESULTS.md]

The designs (``bench/designs.py``): ``wanedit-events`` (the sandbox posts each task's end to a
``wanedit provider-events`` receiver the harness starts on a free port with a token, and the
worker runs with ``WANEDIT_PROVIDER_EVENTS=true``), ``wanedit`` (the default: it looks),
``naive``, and ``events-10pct-lost`` (events on, 10% of them dropped by the sandbox).

Each design runs on fresh embedded servers (valkey-server, moto S3, the provider sandbox with the
real limits: C=5 tasks at once, R=5 creates/s, Q=20 queries/s per account, task durations scaled
down) and one Celery worker with concurrency 2 (prefork). A backlog of batch edits is enqueued at
once; interactive edits follow while it waits. The report goes to RESULTS.md and the plot to
inflight.png beside it (RESULTS-x.md: inflight-x.png); logs of the workers go to bench/logs/.

The figures, each measured in this run:

- mean task duration: mean of the provider's own ``end_time - scheduled_time``;
- quota utilization: succeeded edits per second (first enqueue to last completion event) divided
  by the provider capacity C x accounts / mean task duration;
- utilization while the backlog waits: provider RUNNING slot-seconds (the sandbox's own task
  times) from the first create to the last one, over C x accounts x that window;
- interactive latency p50/p95: submit to completion event of the interactive edits, also as a
  multiple of the mean task duration;
- polls per edit: provider status queries (task queries + list calls, sandbox counts) / edits;
- completion lag p50/p95: the provider's ``end_time`` to our completion event;
- 429 answers on the wire (the sandbox's ``throttled``) and failures surfaced to users (edits
  whose completion event is a failure; those from throttling counted apart);
- worker CPU seconds per edit (user + system of the worker's process tree, children included,
  psutil) and peak memory (largest summed RSS of that tree, sampled every 0.5 s).

Event times are the Redis stream entry ids, so every time difference is on this host's clock.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.common import RunResult, Workload
from bench.designs import DESIGNS, Design, pick
from bench.figures import Figures, compute, design_targets, verdict
from bench.plot import plot_inflight
from bench.report import ROWS, cell, describe_code, render
from bench.wanedit_run import ROOT

# --quick: a short run for development, unless the option is given.
QUICK = {"edits": 40, "interactive": 3, "duration": (2.0, 6.0), "interactive_start": 5.0,
         "interactive_every": 3.0}  # fmt: skip
FULL = {"edits": 200, "interactive": 10, "duration": (8.0, 24.0), "interactive_start": 10.0,
        "interactive_every": 5.0}  # fmt: skip
# The sandbox's delay from a task's end to its event POST. The provider documents "as soon as
# the task ends", not a figure: this is the benchmark's assumption, stated in the report.
EVENT_DELAY = 0.05


def _duration(text: str) -> tuple[float, float]:
    low, sep, high = text.partition(":")
    try:
        bounds = (float(low), float(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError("use MIN:MAX seconds, e.g. 2:6") from None
    if not 0 < bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError("need 0 < MIN <= MAX")
    return bounds


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"{value:g} s is outside 0 to 60 s")
    return value


def _designs(text: str) -> list[Design]:
    try:
        return pick(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=_positive, help="batch edits in the backlog (200)")
    parser.add_argument("--interactive", type=int, help="interactive edits (10)")
    parser.add_argument("--accounts", type=_positive, default=1, help="provider accounts (wanedit)")
    parser.add_argument("--duration", type=_duration, help="task MIN:MAX s (8:24)")
    parser.add_argument("--interactive-start", type=float, metavar="S")
    parser.add_argument("--interactive-every", type=float, metavar="S")
    parser.add_argument(
        "--only",
        type=_designs,
        metavar="A,B",
        help=f"run these designs only, of: {', '.join(DESIGNS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run for development: "
        + ", ".join(f"{k.replace('_', '-')} {_show(v)}" for k, v in QUICK.items())
        + "; the report goes to bench/logs/ unless --out is given",
    )
    parser.add_argument(
        "--event-delay",
        type=_seconds,
        default=EVENT_DELAY,
        metavar="S",
        help=f"the sandbox's delay from a task's end to its event POST (default {EVENT_DELAY:g})",
    )
    parser.add_argument("--out", type=Path, help="the report (bench/RESULTS.md)")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.out is None:
        args.out = ROOT / "bench" / ("logs/RESULTS-quick.md" if args.quick else "RESULTS.md")
    if args.only is None:
        args.only = list(DESIGNS.values())
    return args


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ":".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def dump(run: RunResult, path: Path) -> None:
    """Every measurement of one design's run, for a closer look (bench/logs/, not committed)."""
    data = asdict(run)
    for edit, raw in zip(run.edits, data["edits"], strict=True):
        raw.update(latency=edit.latency, lag=edit.lag, task_duration=edit.task_duration)
    path.write_text(json.dumps(data, indent=1))


def _say(text: str) -> None:
    print(text, flush=True)


def summary(figures: dict[str, Figures]) -> list[str]:
    width = max(len(row.label) for row in ROWS)
    lines = [f"{'figure':<{width}}  " + "  ".join(f"{d:>12}" for d in figures)]
    for row in ROWS:
        label = row.label.replace("*", "")
        cells = [cell(row.value(f), row.digits) for f in figures.values()]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:>12}" for c in cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workload = Workload(
        edits=args.edits,
        interactive=max(args.interactive, 0),
        accounts=args.accounts,
        duration_min=args.duration[0],
        duration_max=args.duration[1],
        interactive_start=args.interactive_start,
        interactive_every=args.interactive_every,
    )
    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = ROOT / "bench" / "logs"
    log_dir.mkdir(exist_ok=True)
    # RESULTS.md: inflight.png; RESULTS-2-6s.md: inflight-2-6s.png; x.md: inflight-x.png.
    suffix = out.stem.removeprefix("RESULTS")
    plot_path = out.parent / f"inflight{suffix if suffix != out.stem else '-' + suffix}.png"
    code = describe_code(ROOT, (out, plot_path))
    runs: list[RunResult] = []
    designs: list[Design] = args.only
    for design in designs:
        started = time.monotonic()
        if design.runner == "wanedit":
            from bench.wanedit_run import run_wanedit

            runs.append(run_wanedit(workload, log_dir, _say, design, args.event_delay))
        else:
            from bench.naive_run import run_naive

            runs.append(run_naive(workload, log_dir, _say))
        dump(runs[-1], log_dir / f"{design.name}-run.json")
        _say(f"{design.name}: done in {time.monotonic() - started:.0f} s")

    figures = {run.design: compute(run, workload) for run in runs}
    python = sys.executable
    if Path(python).is_relative_to(ROOT):
        python = str(Path(python).relative_to(ROOT))
    command = shlex.join([python, "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    plot_inflight(runs, workload, plot_path)
    out.write_text(render(runs, figures, designs, workload, command, plot_path.name, code))
    _say("")
    for line in summary(figures):
        _say(line)
    for design in designs:
        for t in design_targets(design, figures[design.name]):
            beside = f"; {t.beside}" if t.beside else ""
            _say(f"{design.name} target {t.name}: {t.value} ({t.rule}{beside}) {verdict(t)}")
    _say(f"\nwrote {out} and {plot_path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every server and worker started was stopped", file=sys.stderr)
        sys.exit(130)
