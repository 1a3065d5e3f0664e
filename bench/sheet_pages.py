"""The contact sheet of a big batch: page sizes and render time for synthetic job records.

    .venv/bin/python -m bench.sheet_pages [JOBS] [PAGE_JOBS]

Renders the sheet of JOBS jobs (default 10000; one in ten failed, one in twenty without a
thumbnail) twice: with links relative to the batch's prefix, and with presigned URLs (signed
by a real boto3 client; signing sends nothing). Prints the size of the index and of the pages.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from wanedit.producers.labels import line_labels
from wanedit.producers.sheet import INDEX, render_sheet, tiles
from wanedit.results import presign

PREFIX = "s3://wanedit-bench/out/nightly-2026-12-03/"


def synthetic_jobs(count: int) -> list[dict[str, Any]]:
    """Public job records as a finished batch has them."""
    jobs = []
    for number in range(1, count + 1):
        job_id = f"job{number:08d}"
        failed = number % 10 == 0
        output = {"index": 0, "uri": f"{PREFIX}{job_id}/0.png"}
        if number % 20 != 1:
            output["thumbnail"] = f"{PREFIX}{job_id}/0.thumb.jpg"
        jobs.append(
            {
                "id": job_id,
                "status": "failed" if failed else "succeeded",
                "request": {
                    "prompt": f"Product photo {number}: put the bottle on a marble table, soft "
                    "morning light from the left, keep the label readable",
                    "images": [f"s3://wanedit-bench/in/catalog/sku-{number:06d}.png"],
                },
                "outputs": [] if failed else [output],
                "usage": None if failed else {"image_count": 1, "cost": 0.2, "currency": "CNY"},
                "error": {"code": "DataInspectionFailed", "message": "refused"} if failed else None,
            }
        )
    return jobs


def status_of(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    failed = sum(1 for job in jobs if job["status"] == "failed")
    return {
        "id": "nightly-2026-12-03",
        "by_status": {"succeeded": len(jobs) - failed, "failed": failed},
        "invalid": 0,
        "images_billed": len(jobs) - failed,
        "cost": round(0.2 * (len(jobs) - failed), 6),
        "currency": "CNY",
        "invalid_lines": [],
    }


def sheet(jobs: list[dict[str, Any]], page_jobs: int, s3: Any = None) -> dict[str, str]:
    """The pages, linked relative to the prefix, or presigned by `s3` for an hour."""
    labels = {job["id"]: line_labels(job, at) for at, job in enumerate(jobs, start=1)}
    if s3 is None:
        made = tiles(jobs, labels, lambda uri: uri.removeprefix(PREFIX))
        return render_sheet(status_of(jobs), made, page_jobs, lambda name: name)
    made = tiles(jobs, labels, lambda uri: presign(s3, uri, 3600))
    return render_sheet(
        status_of(jobs), made, page_jobs, lambda name: presign(s3, PREFIX + name, 3600)
    )


def signer() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="bench-only-not-a-secret",
        config=Config(signature_version="s3v4"),
    )


def sizes(pages: dict[str, str]) -> tuple[int, list[int]]:
    """The index's size and each page's, in bytes (UTF-8)."""
    rest = [len(html.encode()) for name, html in pages.items() if name != INDEX]
    return len(pages[INDEX].encode()), rest


def main(count: int, page_jobs: int) -> None:
    jobs = synthetic_jobs(count)
    for label, s3 in (("relative links", None), ("presigned links", signer())):
        began = time.perf_counter()
        pages = sheet(jobs, page_jobs, s3)
        took = time.perf_counter() - began
        index, rest = sizes(pages)
        print(
            f"{count} jobs, {page_jobs} a page, {label}: {len(rest)} pages; index {index:,} B; "
            f"pages {min(rest):,} to {max(rest):,} B, {sum(rest):,} B in all; {took:.1f} s"
        )


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    main(*(arguments + [10_000, 200][len(arguments) :]))
