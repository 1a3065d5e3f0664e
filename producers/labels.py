"""What a batch's contact sheet calls each job: its manifest line, prompt and input names.

One function, `line_labels`, so where the names come from can change in one place. Today they
are read from the job's request: an input given as a URL or an `s3://` URI is named as the
manifest wrote it; a local file or a data URI was staged into S3 under a key of the job's own,
and its first name is not kept, so it is named by its place in the request.
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


def line_labels(job: Mapping[str, Any], line: int | None) -> LineLabels:
    """The labels of one job (a public job record) made by manifest line `line`. Pure."""
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
