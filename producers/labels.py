"""What a batch's contact sheet calls each job: its manifest line, prompt and input names.

One function, `line_labels`. A batch keeps each line's request as the manifest gave it
(`wanedit.intake.lines`), so inputs are named as the manifest wrote them: local paths, URLs and
`s3://` objects alike. For a job whose line request is not kept (a batch from before lines were
kept), they are read from the job's request: a URL or an `s3://` URI as written; a local file or
a data URI was staged into S3 under a key of the job's own, so it is named by its place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LineLabels:
    """A job as the sheet names it."""

    line: int | None  # the manifest line that made the job (None: not known)
    prompt: str
    inputs: tuple[str, ...]


def line_labels(
    job: Mapping[str, Any], line: int | None, manifest: Mapping[str, Any] | None = None
) -> LineLabels:
    """The labels of one job (a public job record) made by manifest line `line`, whose request
    as the manifest gave it is `manifest` (None: not kept). Pure."""
    if manifest is not None and manifest.get("images"):
        prompt = manifest.get("prompt") or (job.get("request") or {}).get("prompt") or ""
        return LineLabels(line, str(prompt), tuple(str(image) for image in manifest["images"]))
    request = job.get("request") or {}
    staged = re.compile(rf"/{re.escape(str(job.get('id', '')))}/input-(\d+)\.[a-z]+$")
    names = []
    for number, image in enumerate(request.get("images") or [], start=1):
        text = str(image)
        if text.startswith("data:"):
            names.append(f"inline image {number}")
        elif staged.search(text):
            names.append(f"local file {number} (uploaded; its name is not kept)")
        else:
            names.append(text)
    return LineLabels(line, str(request.get("prompt") or ""), tuple(names))
