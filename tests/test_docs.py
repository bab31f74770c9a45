"""The docs cannot rot quietly: every relative link and image in README.md and docs/*.md points at a file or
folder that exists (and an #anchor into a Markdown file at one of its headings), every `make` target README
shows is in the Makefile, README stays a front door (at most 220 lines, a link to every docs page), and every
docs page opens with a title and a sentence saying what it is for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 220

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)   # a fenced code block, fences included
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)                     # inline code, `x` or ``x `y` z``
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target "title"), ![alt](..)
EXTERNAL = ("http://", "https://", "mailto:")


def prose(text: str) -> str:
    """The text without code: fenced blocks removed, inline code blanked (its brackets cannot start a link)."""
    text = FENCE.sub("", text)
    return CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), text)


def code(text: str) -> list[str]:
    """The code in the text: each fenced block's body and each inline code span."""
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    spans = [m.group(2) for m in CODE_SPAN.finditer(FENCE.sub("", text))]
    return blocks + spans


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text())) if not t.startswith(EXTERNAL) and not t.startswith("#")]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped (not - or _), spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)   # a link in a heading counts by its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", page.read_text()), re.M)}


def makefile_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+(?:[ \t]+[A-Za-z0-9_.-]+)*)[ \t]*:(?!=)", line)
        if m and not m.group(1).startswith("."):
            targets.update(m.group(1).split())
    return targets


def make_commands(text: str) -> set[str]:
    """The target of every `make ...` in the code of the text: its first word that is not VAR=value or a flag.
    One space after `make`: README's layout has `report, make         report` as two columns, not a command."""
    found = set()
    for snippet in code(text):
        for m in re.finditer(r"(?<![\w./-])make (?=\S)([^\n]*)", snippet):
            words = [w for w in m.group(1).split() if "=" not in w and not w.startswith("-")]
            if words and re.match(r"[A-Za-z]", words[0]):
                found.add(re.sub(r"[^\w.-].*$", "", words[0]))
    return found


def test_there_is_a_readme_and_docs():
    assert README.is_file() and len(DOCS) >= 5, [p.name for p in DOCS]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path):
    broken = [t for t in relative_links(page) if not (page.parent / t.split("#")[0]).exists()]
    assert broken == [], f"{page.relative_to(ROOT)}: links to nothing: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_anchor_into_a_markdown_page_is_one_of_its_headings(page: Path):
    wrong = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        goal = page.parent / path
        if anchor and goal.suffix == ".md" and goal.is_file() and anchor not in anchors(goal):
            wrong.append(target)
    assert wrong == [], f"{page.relative_to(ROOT)}: anchors that name no heading: {wrong}"


def test_the_link_finder_sees_links_images_and_skips_code():
    page = "[a](docs/x.md#y) ![b](img.png) [c](https://e.org) [d](#top) `[e](not/a/link)`\n```\n[f](nor/this)\n```\n"
    found = [t for t in LINK.findall(prose(page)) if not t.startswith(EXTERNAL) and not t.startswith("#")]
    assert found == ["docs/x.md#y", "img.png"]


def test_every_make_target_readme_shows_is_in_the_makefile():
    shown = make_commands(README.read_text())
    assert {"repro", "test"} <= shown   # the two commands: the parser sees them
    missing = sorted(shown - makefile_targets())
    assert missing == [], f"README shows `make {missing}`, which the Makefile does not define"


def test_the_make_parser_takes_the_first_word_that_is_not_a_variable():
    text = "```bash\nmake bench BENCH_ARGS=--quick\nUI_PORT=5050 make ui\nmake -j2 GRID='a=1|2' ablation\n```\n"
    assert make_commands(text + "`make setup` and report, make    report") == {"bench", "ui", "ablation", "setup"}


def test_readme_is_a_front_door():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; at most {README_MAX_LINES}: move depth to docs/"


def test_readme_links_every_docs_page():
    linked = {(README.parent / t.split("#")[0]).resolve() for t in relative_links(README)}
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_docs_page_opens_with_a_title_and_what_it_is_for(page: Path):
    lines = page.read_text().splitlines()
    assert lines and re.match(r"# \S", lines[0]), f"{page.name}: the first line is not a level-1 heading"
    body = "\n".join(lines[1:]).strip()
    opening = " ".join(line.strip() for line in body.split("\n\n")[0].splitlines())
    assert opening and not re.match(r"(#|\||[-*+] |!\[|```|>|\d+\. )", opening), \
        f"{page.name}: the title is not followed by a sentence: {opening[:60]!r}"
    assert re.search(r"[.!?]$", opening), f"{page.name}: the opening paragraph is not a sentence: {opening[:60]!r}"
