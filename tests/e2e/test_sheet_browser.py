"""The contact sheet looked at in a real browser: a batch runs through a real worker, its sheet
is written with presigned links, and headless Chromium opens each page from moto's S3 server
and loads every thumbnail on it. Chromium is part of `make install`: without it this fails."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import make_image
from tests.e2e.conftest import BUCKET
from wanedit.intake.batch import Source, run_batch, wait_for_batch
from wanedit.producers.summary import LINK_KEY, write_summary

pytestmark = pytest.mark.integration
CHROMIUM = "chromium"
# Written into the page once everything on it has loaded (or failed to): what each image became.
PROBE = """<script>
window.addEventListener("load", () => {
  const states = Array.from(document.images).map(
    (image) => ({src: image.src, complete: image.complete, width: image.naturalWidth}));
  const out = document.createElement("pre");
  out.id = "image-states";
  out.textContent = JSON.stringify(states);
  document.body.appendChild(out);
});
</script>"""


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.images: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))
        elif tag == "img":
            self.images.append(dict(attrs).get("src"))


def parsed(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


def get(url: str) -> requests.Response:
    """Plain HTTP, no credentials: what a person's browser does with the link."""
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, (url, answer.text[:300])
    return answer


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A local HTTP server of `tmp_path`, for a copy of a page with the probe in it."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def image_states(url: str) -> list[dict[str, object]]:
    """Every <img> of the page at `url` once it has loaded, as headless Chromium saw it."""
    browser = shutil.which(CHROMIUM)
    if browser is None:
        pytest.fail(
            "chromium is not installed: `make install` installs Debian's chromium "
            "(apt-get install -y chromium); this test needs a real browser"
        )
    done = subprocess.run(
        [browser, "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
         "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="image-states">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading in chromium: {done.stdout[-1000:]}"
    return list(json.loads(found.group(1).replace("&amp;", "&")))


def test_every_thumbnail_on_every_page_loads_in_chromium(
    stack_env, worker, producer, s3, served, run_id
):
    for number in range(3):
        s3.put_object(
            Bucket=BUCKET,
            Key=f"sheet-in/{run_id}/{number}.png",
            Body=make_image(512, 512, (60 * number, 120, 200)),
        )
    folder, base = served
    manifest = folder / "manifest.jsonl"
    lines = [
        {"prompt": f"Sheet <b>{number}</b>", "images": [f"s3://{BUCKET}/sheet-in/{run_id}/{number}.png"],
         "n": 2 if number == 1 else 1}
        for number in range(3)
    ]  # fmt: skip
    # A local file is staged under a key of the job's own; the sheet names it as the manifest did.
    local = folder / "catalogue-cat.png"
    local.write_bytes(make_image(600, 500, (10, 200, 90)))
    lines[2]["images"] = [str(local)]
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    started = run_batch(Source(str(manifest)), output=f"s3://{BUCKET}/sheet-out/", context=producer)
    status = wait_for_batch(started["id"], 120, context=producer)
    assert (status["done"], status["running"]) == (3, 0), status

    settings = producer.settings.model_copy(update={"result_url_ttl": 600, "summary_page_jobs": 2})
    written = write_summary(started["id"], context=replace(producer, settings=settings))
    index = parsed(get(written[LINK_KEY]).text)
    pages = [link["href"] for link in index.links]
    assert len(pages) == 2
    assert all(parse_qs(urlsplit(str(page)).query)["X-Amz-Expires"] == ["600"] for page in pages)

    shown, texts = [], []
    for number, page_url in enumerate(pages, start=1):
        html = get(str(page_url)).text
        texts.append(html)
        links = parsed(html)
        # Its navigation opens too: the index, and the page before or after it.
        for link in links.links:
            if link.get("rel") in ("index", "prev", "next"):
                assert "wanedit batch" in get(str(link["href"])).text
        # Each full image it links to opens.
        for link in links.links:
            if ".png" in str(link["href"]):
                assert get(str(link["href"])).content.startswith(b"\x89PNG")
        (folder / f"page-{number}.html").write_text(html.replace("</body>", PROBE + "</body>"))
        states = image_states(f"{base}/page-{number}.html")
        assert [state["src"] for state in states] == links.images
        assert all(state["complete"] and int(str(state["width"])) > 0 for state in states), states
        shown += states
    # Four results in all (the second line made two), each shown by its thumbnail.
    assert len(shown) == 4
    assert all(".thumb.jpg" in str(state["src"]) for state in shown)
    assert sum(str(local) in text for text in texts) == 1, "the local input is not named"
