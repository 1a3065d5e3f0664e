"""`make bench`: wanedit and the naive SDK design under the same backlog, side by side.

    python -m bench.run [--edits 200] [--interactive 10] [--accounts 1] [--duration 8:24]
                        [--only wanedit|naive] [--out bench/RESULTS.md]

Each design runs on fresh embedded servers (valkey-server, moto S3, the provider sandbox with the
real limits: C=5 tasks at once, R=5 creates/s, Q=20 queries/s per account, task durations scaled
down) and one Celery worker with concurrency 2 (prefork). A backlog of batch edits is enqueued at
once; interactive edits follow while it waits. The report goes to RESULTS.md and the plot to
inflight.png beside it (RESULTS-x.md: inflight-x.png); logs of the workers go to bench/logs/.

The figures, each measured in this run:

- mean task duration: mean of the provider's own ``end_time - scheduled_time``;
- quota utilization: succeeded edits per second (first enqueue to last completion event) divided
  by the provider capacity C x accounts / mean task duration;
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
from bench.figures import Figures, compute, targets
from bench.plot import plot_inflight
from bench.report import ROWS, cell, describe_code, render
from bench.wanedit_run import ROOT

DESIGNS = ("wanedit", "naive")


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=_positive, default=200, help="batch edits in the backlog")
    parser.add_argument("--interactive", type=int, default=10, help="interactive edits")
    parser.add_argument("--accounts", type=_positive, default=1, help="provider accounts (wanedit)")
    parser.add_argument("--duration", type=_duration, default=(8.0, 24.0), help="task MIN:MAX s")
    parser.add_argument("--interactive-start", type=float, default=10.0, metavar="S")
    parser.add_argument("--interactive-every", type=float, default=5.0, metavar="S")
    parser.add_argument("--only", choices=DESIGNS, help="run one design only")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    return parser.parse_args(argv)


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
    for design in DESIGNS:
        if args.only and design != args.only:
            continue
        started = time.monotonic()
        if design == "wanedit":
            from bench.wanedit_run import run_wanedit

            runs.append(run_wanedit(workload, log_dir, _say))
        else:
            from bench.naive_run import run_naive

            runs.append(run_naive(workload, log_dir, _say))
        dump(runs[-1], log_dir / f"{design}-run.json")
        _say(f"{design}: done in {time.monotonic() - started:.0f} s")

    figures = {run.design: compute(run, workload) for run in runs}
    python = sys.executable
    if Path(python).is_relative_to(ROOT):
        python = str(Path(python).relative_to(ROOT))
    command = shlex.join([python, "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    plot_inflight(runs, workload, plot_path)
    out.write_text(render(runs, figures, workload, command, plot_path.name, code))
    _say("")
    for line in summary(figures):
        _say(line)
    if "wanedit" in figures:
        _say("")
        for t in targets(figures["wanedit"]):
            verdict = "n/a" if t.passed is None else ("PASS" if t.passed else "FAIL")
            _say(f"target {t.name}: {t.value} ({t.rule}) {verdict}")
    _say(f"\nwrote {out} and {plot_path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every server and worker started was stopped", file=sys.stderr)
        sys.exit(130)
