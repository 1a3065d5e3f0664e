"""A batch's contact sheet as pages: an index (summary.html) and pages of at most N jobs
(summary-1.html, ...), each job a tile. Pure: links are made by the functions given."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2

from wanedit.producers.labels import LineLabels

INDEX = "summary.html"


@dataclass(frozen=True)
class Shot:
    """One output of a job: the link to the full image, and its thumbnail's (None: none)."""

    href: str
    thumb: str | None


@dataclass(frozen=True)
class Tile:
    """One job on a page."""

    job_id: str
    status: str
    labels: LineLabels
    cost: str
    shots: tuple[Shot, ...]
    error: str


def page_name(number: int) -> str:
    return f"summary-{number}.html"


def tiles(
    jobs: Sequence[Mapping[str, Any]],
    labels: Mapping[str, LineLabels],
    link: Callable[[str], str],
) -> list[Tile]:
    """A tile per job; `link` turns an `s3://` URI into what a browser can open."""
    made = []
    for job in jobs:
        shots = tuple(
            Shot(
                link(output["uri"]), link(output["thumbnail"]) if output.get("thumbnail") else None
            )
            for output in job.get("outputs") or []
            if "uri" in output
        )
        usage = job.get("usage") or {}
        cost = (
            "" if usage.get("cost") is None else f"{usage['cost']:g} {usage.get('currency') or ''}"
        )
        error = job.get("error") or {}
        made.append(
            Tile(
                job_id=job["id"],
                status=job["status"],
                labels=labels[job["id"]],
                cost=cost.strip(),
                shots=shots,
                error=f"{error.get('code', '')}: {error.get('message', '')}" if error else "",
            )
        )
    return made


def render_sheet(
    status: Mapping[str, Any],
    all_tiles: Sequence[Tile],
    page_jobs: int,
    page_link: Callable[[str], str],
) -> dict[str, str]:
    """The index and every page, by file name; `page_link` turns a page's file name into the
    link other pages use for it."""
    if page_jobs < 1:
        raise ValueError(f"page_jobs: {page_jobs} must be 1 or more")
    chunks = [all_tiles[at : at + page_jobs] for at in range(0, len(all_tiles), page_jobs)]
    counts = ", ".join(f"{count} {name}" for name, count in sorted(status["by_status"].items()))
    pages: list[dict[str, Any]] = []
    for number, chunk in enumerate(chunks, start=1):
        lines = [tile.labels.line for tile in chunk if tile.labels.line is not None]
        pages.append(
            {
                "number": number,
                "href": page_link(page_name(number)),
                "first": (number - 1) * page_jobs + 1,
                "last": (number - 1) * page_jobs + len(chunk),
                "lines": f"lines {min(lines)} to {max(lines)}" if lines else "",
                "tiles": chunk,
            }
        )
    common = {"batch": status, "counts": counts, "pages": pages, "index": page_link(INDEX)}
    written = {INDEX: _template("summary.html").render(**common)}
    for at, page in enumerate(pages):
        written[page_name(page["number"])] = _template("sheet_page.html").render(
            **common,
            page=page,
            prev=pages[at - 1] if at > 0 else None,
            next=pages[at + 1] if at + 1 < len(pages) else None,
        )
    return written


@cache
def _template(name: str) -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("wanedit.producers", "templates"),
        autoescape=True,  # prompts, URIs and error messages are the batch's callers' text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(name)
