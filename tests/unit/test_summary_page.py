"""The batch contact sheet: an index and pages of at most N jobs, each job a tile with its
thumbnail, prompt, input names, status and cost; Jinja2 with autoescape."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from bench.sheet_pages import PREFIX, sheet, sizes, status_of, synthetic_jobs
from wanedit.producers.labels import LineLabels, line_labels
from wanedit.producers.sheet import render_sheet, tiles


class Page(HTMLParser):
    """The page's tags and text, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attr(self, tag: str, name: str, **having: str) -> list[str | None]:
        return [
            attrs.get(name)
            for found, attrs in self.tags
            if found == tag and all(attrs.get(k) == v for k, v in having.items())
        ]

    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def parsed(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_five_jobs_two_a_page_make_three_pages_linked_to_each_other_and_the_index():
    pages = sheet(synthetic_jobs(5), 2)
    assert sorted(pages) == ["summary-1.html", "summary-2.html", "summary-3.html", "summary.html"]
    index = parsed(pages["summary.html"])
    assert index.attr("a", "href") == ["summary-1.html", "summary-2.html", "summary-3.html"]
    assert "page 2 : jobs 3 to 4 (lines 3 to 4)" in index.words()
    assert "5 succeeded; 0 invalid lines; 5 images billed" in index.words()
    # Each navigation bar is shown above and below the tiles.
    for name, prev, next_ in (
        ("summary-1.html", [], ["summary-2.html"] * 2),
        ("summary-2.html", ["summary-1.html"] * 2, ["summary-3.html"] * 2),
        ("summary-3.html", ["summary-2.html"] * 2, []),
    ):
        page = parsed(pages[name])
        assert page.attr("a", "href", rel="prev") == prev
        assert page.attr("a", "href", rel="next") == next_
        assert page.attr("a", "href", rel="index") == ["summary.html"] * 2


def test_a_tile_shows_the_thumbnail_prompt_inputs_status_cost_and_links_the_full_image():
    pages = sheet(synthetic_jobs(3), 200)
    page = parsed(pages["summary-1.html"])
    # Job 1 has no thumbnail: a link to its full image instead.
    assert page.attr("img", "src") == ["job00000002/0.thumb.jpg", "job00000003/0.thumb.jpg"]
    hrefs = page.attr("a", "href")
    assert [h for h in hrefs if h and h.endswith(".png")] == [
        f"job0000000{n}/0.png" for n in (1, 2, 3)
    ]
    words = page.words()
    assert "full image 1" in words
    assert "Product photo 2: put the bottle on a marble table" in words
    assert "line 2: s3://wanedit-bench/in/catalog/sku-000002.png" in words
    assert "succeeded, 0.2 CNY job job00000002" in words


def test_a_failed_job_shows_its_error_and_no_image():
    jobs = synthetic_jobs(10)[9:]
    page = parsed(sheet(jobs, 200)["summary-1.html"])
    assert page.attr("img", "src") == []
    assert "DataInspectionFailed: refused" in page.words()
    assert "failed job job00000010" in page.words()


def test_a_prompt_with_a_script_tag_is_text_not_a_script():
    hostile = '<script>alert("x")</script>'
    job: dict[str, Any] = synthetic_jobs(10)[9]
    job["request"]["prompt"] = hostile
    job["error"] = {"code": "<b>", "message": "<img src=x onerror=alert(1)>"}
    labels = {job["id"]: line_labels(job, 1)}
    html = render_sheet(status_of([job]), tiles([job], labels, str), 5, str)["summary-1.html"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    page = parsed(html)
    assert [tag for tag, _ in page.tags if tag in ("script", "b", "img")] == []
    assert hostile in "".join(page.text)


def test_invalid_lines_are_listed_on_the_index():
    status = {**status_of([]), "invalid": 1}
    status["invalid_lines"] = [{"line": 3, "error": "n: 9 is outside 1 to 4 images"}]
    index = parsed(render_sheet(status, [], 10, str)["summary.html"])
    assert "line 3 n: 9 is outside 1 to 4 images" in index.words()


@pytest.mark.parametrize(
    ("images", "names"),
    [
        (["s3://bkt/in/a.png", "https://x.example/b.png?v=1"],
         ("s3://bkt/in/a.png", "https://x.example/b.png?v=1")),
        (["s3://bkt/staging/j1/input-0.png", "s3://bkt/staging/j1/input-1.jpeg"],
         ("local file 1 (uploaded; its name is not kept)",
          "local file 2 (uploaded; its name is not kept)")),
        (["data:image/png;base64,AAAA"], ("inline image 1",)),
        # Another job's staged key is a name like any other.
        (["s3://bkt/staging/j9/input-0.png"], ("s3://bkt/staging/j9/input-0.png",)),
    ],
)  # fmt: skip
def test_line_labels_name_inputs_as_the_request_has_them(images, names):
    job = {"id": "j1", "request": {"prompt": "Add snow", "images": images}}
    assert line_labels(job, 7) == LineLabels(7, "Add snow", names)


def test_line_labels_name_inputs_as_the_manifest_wrote_them_when_the_line_is_kept():
    job = {
        "id": "j1",
        "request": {"prompt": "Add snow", "images": ["s3://bkt/staging/j1/input-0.png"]},
    }
    manifest = {"prompt": "Add snow", "images": ["photos/cat.png"]}
    assert line_labels(job, 4, manifest) == LineLabels(4, "Add snow", ("photos/cat.png",))
    # A line whose request was not kept: named from the job's request, as before.
    assert line_labels(job, 4, None).inputs == ("local file 1 (uploaded; its name is not kept)",)


def test_ten_thousand_jobs_make_fifty_pages_of_bounded_size():
    """The sizes docs/batches.md states (`python -m bench.sheet_pages` prints them)."""
    jobs = synthetic_jobs(10_000)
    index, pages = sizes(sheet(jobs, 200))
    assert len(pages) == 50
    assert index < 8_000
    assert max(pages) < 100_000
    last = parsed(sheet(jobs, 200)["summary-50.html"])
    assert last.attr("a", "href", rel="next") == []
    assert "jobs 9801 to 10000" in last.words()
    assert PREFIX not in "".join(sheet(jobs[:3], 200).values())


def test_a_page_size_below_one_is_refused():
    with pytest.raises(ValueError, match="page_jobs: 0 must be 1 or more"):
        render_sheet(status_of([]), [], 0, str)
