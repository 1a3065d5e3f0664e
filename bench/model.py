"""A model of one account's slots, to see what the query budget allows at the benchmark's scale.

    python -m bench.model [--edits 3000] [--overhead 0.028]

C=5 slots, task durations uniform in 2 to 6 s, creates at least 1/R = 0.2 s apart. The account
is looked at with one list call; each task seen ended costs one more query (its results) and
its slot takes the next create `overhead` seconds after the look (the median measured by
`python -m bench.gaps`). Looks come either every `fraction x mean` ("even"), or when
`wanedit.workers.policy.schedule.look_delay` (the code the workers run) says so ("hazard").
The model has no start or end: it is the steady state, where the benchmark also loses about
1% of slot time at the two ends of a 200-edit run. It prints, per policy and fraction: the share
of slot time busy, queries per edit, and the p95 of the time from a task's end to the look that
saw it.
"""

from __future__ import annotations

import argparse
import random

from wanedit.workers.policy.schedule import look_budget, look_delay

SLOTS, LOW, HIGH, SPACING = 5, 2.0, 6.0, 0.2


def simulate(
    policy: str, fraction: float, edits: int, overhead: float, seed: int = 1
) -> tuple[float, float, float]:
    rng = random.Random(seed)
    history = sorted(rng.uniform(LOW, HIGH) for _ in range(100))
    mean = (LOW + HIGH) / 2
    interval = fraction * mean
    budget = look_budget(SLOTS, interval, mean)
    slots = [(i * SPACING, i * SPACING + rng.uniform(LOW, HIGH)) for i in range(SLOTS)]
    last_create = (SLOTS - 1) * SPACING
    now = done = queries = 0
    idle = 0.0
    seen_after: list[float] = []
    while done < edits:
        if policy == "even":
            now += interval
        else:
            ages = [now - start for start, end in slots]
            now += look_delay(
                ages,
                history,
                budget=budget,
                interval=interval,
                min_delay=0.05 * interval,
                max_delay=interval,
            )
        queries += 1
        for index in sorted(range(SLOTS), key=lambda i: slots[i][1]):
            end = slots[index][1]
            if end > now:
                continue
            queries += 1
            create = max(now + overhead, last_create + SPACING)
            last_create = create
            idle += create - end
            seen_after.append(now - end)
            done += 1
            slots[index] = (create, create + rng.uniform(LOW, HIGH))
    seen_after.sort()
    busy = done * mean
    return busy / (busy + idle), queries / done, seen_after[int(0.95 * (len(seen_after) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=3000)
    parser.add_argument("--overhead", type=float, default=0.028)
    args = parser.parse_args()
    print("| looks | fraction | busy share | queries per edit | end-to-look p95 (s) |")
    print("|---|---|---|---|---|")
    for fraction in (0.05, 0.065, 0.075, 0.09):
        for policy in ("even", "hazard"):
            busy, queries, p95 = simulate(policy, fraction, args.edits, args.overhead)
            print(f"| {policy} | {fraction} | {busy:.3f} | {queries:.2f} | {p95:.2f} |")


if __name__ == "__main__":
    main()
