"""`wanedit batch` on the running stack: the documented nightly manifest, from S3, end to end."""

from __future__ import annotations

import base64
import json
import re
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import make_image
from tests.e2e.conftest import BUCKET
from tests.e2e.test_cli import wanedit

pytestmark = pytest.mark.integration
PAGE = Path(__file__).parents[2] / "docs" / "batches.md"


def page_block(name: str) -> str:
    block = re.search(
        rf"<!-- {name} -->\n```\w+\n(.*?)```\n<!-- /{name} -->", PAGE.read_text(), re.S
    )
    assert block, f"docs/batches.md lost its {name} block"
    return block.group(1)


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"] or "")


def _job_count(producer) -> int:
    return sum(1 for _ in producer.redis.scan_iter(f"{producer.settings.key_prefix}:job:*"))


def test_the_nightly_batch_runs_once_and_writes_its_summary(stack_env, worker, producer, s3):
    manifest = page_block("nightly-manifest")
    assert len(manifest.splitlines()) == 5
    for number, color in enumerate([(200, 80, 40), (40, 160, 90), (30, 60, 200), (220, 200, 20)]):
        s3.put_object(
            Bucket=BUCKET, Key=f"nightly/in/{number + 1}.png", Body=make_image(512, 512, color)
        )
    s3.put_object(Bucket=BUCKET, Key="nightly/manifest.jsonl", Body=manifest.encode())
    run, status = [shlex.split(line) for line in page_block("nightly-commands").splitlines()]
    assert run[0] == status[0] == "wanedit"

    jobs_before = _job_count(producer)
    result = wanedit(stack_env, *run[1:], timeout=180)
    # Exit 1: line 3 is invalid; every other line's job succeeded.
    assert result.returncode == 1, result.stderr
    assert "line 3: n: 9 is outside 1 to 4 images" in result.stdout
    assert "4 enqueued, 4 done, 0 failed, 0 running, 1 invalid" in result.stdout
    batch_id = result.stdout.splitlines()[0]
    assert _job_count(producer) == jobs_before + 4

    shown = wanedit(stack_env, *[batch_id if arg == "BATCH_ID" else arg for arg in status[1:]])
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["enqueued"], data["done"], data["failed"], data["invalid"]) == (4, 4, 0, 1)
    assert data["eta_seconds"] == 0
    assert data["invalid_lines"] == [{"line": 3, "error": "n: 9 is outside 1 to 4 images"}]

    prefix = f"nightly-out/{batch_id}/"
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "summary.json")["Body"].read())
    assert summary["by_status"] == {"succeeded": 4}
    assert summary["failures_by_code"] == {}
    assert summary["images_billed"] == 4
    assert summary["cost"] == pytest.approx(4 * 0.220177)
    assert summary["invalid_lines"][0]["line"] == 3
    assert len(summary["jobs"]) == 4
    for job in summary["jobs"]:
        assert job["outputs"] and all(
            uri.startswith(f"s3://{BUCKET}/{prefix}") for uri in job["outputs"]
        )

    index = s3.get_object(Bucket=BUCKET, Key=prefix + "summary.html")
    assert index["ContentType"].startswith("text/html")
    page = s3.get_object(Bucket=BUCKET, Key=prefix + "summary-1.html")
    images = Images()
    images.feed(page["Body"].read().decode())
    # Four outputs, each shown by the thumbnail beside it, linked relative to the batch's prefix.
    assert len(images.sources) == 4
    for src in images.sources:
        assert src.endswith(".thumb.jpg")
        assert s3.get_object(Bucket=BUCKET, Key=prefix + src)["ContentType"] == "image/jpeg"

    again = wanedit(stack_env, *run[1:], timeout=180)
    assert again.returncode == 1, again.stderr
    assert again.stdout.splitlines()[0] == batch_id
    assert "4 enqueued, 4 done" in again.stdout
    assert _job_count(producer) == jobs_before + 4


def test_a_prefix_of_images_becomes_one_edit_each(stack_env, worker, producer, s3):
    for name in ("a.png", "b.jpg", "notes.txt"):
        s3.put_object(Bucket=BUCKET, Key=f"prefix-in/{name}", Body=make_image(512, 512, (9, 9, 9)))
    result = wanedit(
        stack_env, "batch", "--prefix", f"s3://{BUCKET}/prefix-in/", "--prompt", "Add snow",
        "--size", "1024*1024", "--wait", "--json", timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["total"], data["done"], data["invalid"]) == (2, 2, 0)
    where = data["summary"]["summary.json"].removeprefix(f"s3://{BUCKET}/")
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key=where)["Body"].read())
    assert sorted(image for job in summary["jobs"] for image in job["images"]) == [
        f"s3://{BUCKET}/prefix-in/a.png",
        f"s3://{BUCKET}/prefix-in/b.jpg",
    ]


def test_a_line_that_breaks_the_parser_or_the_image_reader_never_stops_a_batch(
    stack_env, worker, producer, s3, tmp_path
):
    """Deep JSON, a CSV cell over the reader's limit, a decompression bomb (inline and as a local
    file), a line that is not UTF-8: each is reported with its line, the rest is enqueued, and a
    second run does the same."""
    from tests.unit.test_images import _png_claiming
    from wanedit.intake.batch import Source, run_batch

    s3.put_object(Bucket=BUCKET, Key="bad-lines/in.png", Body=make_image(512, 512, (1, 2, 3)))
    image = f"s3://{BUCKET}/bad-lines/in.png"
    bomb = _png_claiming(20000, 20000)
    bomb_file = tmp_path / "bomb.png"
    bomb_file.write_bytes(bomb)
    bomb_uri = "data:image/png;base64," + base64.b64encode(bomb).decode()
    refused = (
        "20000x20000 px (400,000,000 px) is over the provider's limit of 5000x5000 px "
        "(25,000,000 px); refused before decoding"
    )
    good = json.dumps({"prompt": "Add snow", "images": [image]}).encode()
    jsonl = b"\n".join(
        [
            good,
            b'{"prompt": "p", "images": ["'
            + image.encode()
            + b'"], "metadata": '
            + b"[" * 50_000
            + b"]" * 50_000
            + b"}",
            json.dumps({"prompt": "Add snow", "images": [bomb_uri]}).encode(),
            json.dumps({"prompt": "Add snow", "images": [str(bomb_file)]}).encode(),
            b'{"prompt": "caf\xe9", "images": ["' + image.encode() + b'"]}',
            json.dumps({"prompt": "Add rain", "images": [image]}).encode(),
        ]
    )
    s3.put_object(Bucket=BUCKET, Key="bad-lines/m.jsonl", Body=jsonl)
    csv_text = "\n".join(
        ["prompt,images", f"Add snow,{image}", f"{'x' * 200_000},{image}", f"Add rain,{image}"]
    )
    s3.put_object(Bucket=BUCKET, Key="bad-lines/m.csv", Body=csv_text.encode())

    for _ in range(2):  # the same on every run
        status = run_batch(Source(f"s3://{BUCKET}/bad-lines/m.jsonl"), context=producer)
        assert (status["total"], status["enqueued"], status["invalid"]) == (6, 2, 4)
        assert status["invalid_lines"] == [
            {"line": 2, "error": "JSON nested 50001 levels deep is over the limit of 64 levels"},
            {"line": 3, "error": f"images[0]: {refused}"},
            {"line": 4, "error": f"images[0]: {refused}"},
            {"line": 5, "error": "not valid UTF-8 (byte 0xe9 at column 16)"},
        ]
        status = run_batch(Source(f"s3://{BUCKET}/bad-lines/m.csv"), context=producer)
        assert (status["total"], status["enqueued"], status["invalid"]) == (3, 2, 1)
        assert status["invalid_lines"] == [
            {
                "line": 3,
                "error": "prompt: a cell of more than 131072 characters is over the CSV limit "
                "of 131072",
            }
        ]
