"""README.md is outside the docs site, so its links are checked here: every relative link names a
file that exists (and a heading, when it has an anchor), and every example it shares with a docs
page, marked `<!-- name -->` ... `<!-- /name -->`, is the same as there (where the tests run it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
MARKED = re.compile(r"<!-- (?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /(?P=name) -->", re.S)


def prose(markdown: str) -> str:
    """The text outside code blocks and code spans."""
    return CODE.sub("", FENCE.sub("", markdown))


def links(markdown: str) -> list[str]:
    return LINK.findall(prose(markdown))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and MkDocs write it: lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", markdown))}


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Two commands", "two-commands"),
        ("Provider quota, priorities and cost", "provider-quota-priorities-and-cost"),
        ("Logs: `WANEDIT_LOG_FORMAT`", "logs-wanedit_log_format"),
        ("`wanedit top`", "wanedit-top"),
        ("The contract: `wanedit schema`", "the-contract-wanedit-schema"),
        ("Runs of wanedit.enqueue", "runs-of-waneditenqueue"),
    ],
)
def test_slug(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_links_skip_code() -> None:
    text = "See [a](a.md) and `[b](b.md)`.\n```md\n[c](c.md)\n```\n[d](d.md#x)\n"
    assert links(text) == ["a.md", "d.md#x"]


README_LINKS = [target for target in links(README.read_text()) if relative(target)]


def test_the_readme_links_to_the_docs() -> None:
    assert any(target.startswith("docs/") for target in README_LINKS)


@pytest.mark.parametrize("target", README_LINKS)
def test_each_relative_link_of_the_readme_resolves(target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (README.parent / path) if path else README
    assert file.exists(), f"README.md links to {path}, which does not exist"
    if anchor:
        assert file.suffix == ".md", f"{target}: an anchor in a file that is not Markdown"
        assert anchor in anchors(file.read_text()), f"{path or 'README.md'} has no #{anchor}"


def marked_blocks(markdown: str) -> dict[str, str]:
    return {match["name"]: match["body"] for match in MARKED.finditer(markdown)}


DOCS_BLOCKS = {
    name: (page.name, body)
    for page in sorted((ROOT / "docs").glob("*.md"))
    for name, body in marked_blocks(page.read_text()).items()
}


@pytest.mark.parametrize("name", sorted(marked_blocks(README.read_text())))
def test_each_marked_readme_example_is_the_tested_one(name: str) -> None:
    assert name in DOCS_BLOCKS, f"README.md's {name} block is on no docs page"
    page, body = DOCS_BLOCKS[name]
    shown = marked_blocks(README.read_text())[name]
    assert shown == body, f"README.md's {name} differs from docs/{page}"
