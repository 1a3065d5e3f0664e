"""Figure 1: a manifest of URL inputs enqueued as a batch (`wanedit batch`'s path), and the Redis
memory each queued job takes."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from bench.scale_servers import servers

# One line in this many is broken on purpose: the batch must report it and go on.
BAD_EVERY = 1000
MEMORY_SAMPLE = 1000  # job records asked for their MEMORY USAGE


@dataclass(frozen=True)
class EnqueueFigures:
    path: str  # "chunked" (run_batch) or "per line" (enqueue_line, one line at a time)
    lines: int
    enqueued: int
    invalid: int
    seconds: float  # start to the last line handled (the manifest read twice: digest, lines)
    status_seconds: float  # then the batch's status, read from every job record
    used_memory_growth: int  # bytes, the batch's whole footprint
    record_bytes_mean: float  # MEMORY USAGE of a job record, mean of a sample
    record_bytes_max: int

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    @property
    def bytes_per_job(self) -> float:
        return self.used_memory_growth / self.enqueued if self.enqueued else 0.0


def write_manifest(path: Path, lines: int, seed: int = 7) -> int:
    """A JSONL manifest of `lines` URL-input edits; returns how many lines are broken on purpose
    (a missing prompt), one in BAD_EVERY."""
    rand = random.Random(seed)
    bad = 0
    with path.open("w") as out:
        for number in range(1, lines + 1):
            row: dict[str, object] = {
                "images": [f"https://images.example.com/catalogue/{number:06d}.png"],
                "prompt": f"put item {number} on a white background, soft shadow",
                "metadata": {"sku": f"SKU-{rand.randrange(10**8):08d}"},
            }
            if number % BAD_EVERY == 0:
                del row["prompt"]
                bad += 1
            out.write(json.dumps(row) + "\n")
    return bad


def measure_enqueue(lines: int, workdir: Path, *, per_line: bool = False) -> EnqueueFigures:
    """Enqueue a `lines`-line manifest on fresh embedded servers: through `run_batch` (what
    `wanedit batch` runs), or with `per_line` through `enqueue_line` one line at a time (the
    path batches took before lines were enqueued in chunks)."""
    manifest = workdir / f"manifest-{lines}.jsonl"
    write_manifest(manifest, lines)
    with servers():
        from wanedit.intake.batch import (
            Source,
            batch_output,
            batch_status,
            enqueue_line,
            run_batch,
        )
        from wanedit.intake.context import get_context
        from wanedit.intake.manifest import batch_id_for

        ctx = get_context()
        ctx.redis.ping()
        before = int(ctx.redis.info("memory")["used_memory"])
        last = [0.0]

        def handled(number: int) -> None:
            last[0] = time.perf_counter()

        started = time.perf_counter()
        source = Source(str(manifest))
        if per_line:
            batch_id = batch_id_for(source.location, source.digest(ctx))
            keys = ctx.store.keys.batch(batch_id)
            ctx.redis.hset(keys.info, mapping={"id": batch_id, "source": source.location})
            output = batch_output(ctx, batch_id, None)
            for line in source.lines(ctx):
                enqueue_line(ctx, keys, batch_id, line, output)
                handled(line.number)
            status = batch_status(batch_id, context=ctx)
        else:
            status = run_batch(source, context=ctx, on_line=handled)
        ended = time.perf_counter()
        after = int(ctx.redis.info("memory")["used_memory"])
        keys = ctx.store.keys.batch(status["id"])
        job_ids = [str(j) for j in ctx.redis.lrange(keys.jobs, 0, -1)]
        sample = random.Random(1).sample(job_ids, min(MEMORY_SAMPLE, len(job_ids)))
        pipe = ctx.redis.pipeline(transaction=False)
        for job_id in sample:
            pipe.memory_usage(ctx.store.keys.job(job_id), samples=0)
        sizes = [int(size or 0) for size in pipe.execute()]
        return EnqueueFigures(
            path="per line" if per_line else "chunked",
            lines=lines,
            enqueued=int(ctx.redis.hlen(keys.lines)),
            invalid=int(ctx.redis.hlen(keys.invalid)),
            seconds=last[0] - started,
            status_seconds=ended - last[0],
            used_memory_growth=after - before,
            record_bytes_mean=mean(sizes) if sizes else 0.0,
            record_bytes_max=max(sizes, default=0),
        )


if __name__ == "__main__":
    import sys
    import tempfile

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    one_by_one = len(sys.argv) > 2 and sys.argv[2] == "per-line"
    where = Path(tempfile.mkdtemp(prefix="wanedit-scale-"))
    figures = measure_enqueue(count, where, per_line=one_by_one)
    print(figures, f"{figures.lines_per_second:.0f} lines/s", f"{figures.bytes_per_job:.0f} B/job")
