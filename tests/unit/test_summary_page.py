"""The batch contact sheet: a Jinja2 template with autoescape, rendered from a status."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from wanedit.producers.summary import contact_sheet

THUMB = "data:image/jpeg;base64,/9j/AAAA"


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


def status(**job: Any) -> dict[str, Any]:
    return {
        "id": "b1",
        "by_status": {"succeeded": 1, "failed": 1},
        "invalid": 1,
        "images_billed": 2,
        "cost": 0.44,
        "currency": "CNY",
        "jobs": [
            {
                "id": "j1",
                "status": "succeeded",
                "prompt": "Add snow",
                "images": ["s3://bkt/in/1.png"],
                "outputs": ["s3://bkt/out/1.png", "s3://bkt/out/2.png"],
                "error": None,
            },
            {
                "id": "j2",
                "status": "failed",
                "prompt": "Make it blue",
                "images": ["https://example.com/a.png?x=1&y=2"],
                "outputs": [],
                "error": {"code": "DataInspectionFailed", "message": "refused"},
                **job,
            },
        ],
        "invalid_lines": [{"line": 3, "error": "n: 9 is outside 1 to 4 images"}],
    }


def parsed(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_thumbnails_links_failures_and_invalid_lines():
    thumbnails = {
        "s3://bkt/in/1.png": THUMB,
        "s3://bkt/out/1.png": THUMB,
        "s3://bkt/out/2.png": None,
    }
    page = parsed(contact_sheet(status(), thumbnails))
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert images == [THUMB, THUMB]
    links = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    # An image without a thumbnail is a link; `&` in a URL is escaped and reads back whole.
    assert links == ["s3://bkt/out/2.png", "https://example.com/a.png?x=1&y=2"]
    text = " ".join(" ".join(page.text).split())
    assert "wanedit batch b1" in text
    assert "1 failed, 1 succeeded; 1 invalid lines; 2 images billed, cost 0.44 CNY" in text
    assert "DataInspectionFailed: refused" in text
    assert "line 3 invalid n: 9 is outside 1 to 4 images" in text
    assert "Add snow" in text


def test_a_prompt_with_a_script_tag_is_text_not_a_script():
    hostile = '<script>alert("x")</script>'
    html = contact_sheet(
        status(prompt=hostile, error={"code": "<b>", "message": "<img src=x onerror=alert(1)>"}),
        {},
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    page = parsed(html)
    assert [tag for tag, _ in page.tags if tag in ("script", "b", "img")] == []
    assert hostile in "".join(page.text)
