"""Operators' Markdown becomes HTML that cannot carry script, raw HTML or dangerous links."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from app.incidents.markdown import plain, render

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](file:///etc/passwd)",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<svg onload=alert(1)>",
    "<style>body{display:none}</style>",
    "<div onclick=\"alert(1)\">x</div>",
    "![x](https://evil.example/track.png)",
    "[click][r]\n\n[r]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "```html\n<script>alert(1)</script>\n```",
    "<details open ontoggle=alert(1)>",
    "[a](https://ok.example \"t\\\" onmouseover=alert(1)\")",
]


SAFE_TAGS = {"p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a",
             "h2", "h3", "h4", "h5", "h6"}


class Elements(HTMLParser):
    """Every element and attribute a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_markdown_comes_out_inert(source: str) -> None:
    html = str(render(source))
    for tag, attrs in elements(html):
        assert tag in SAFE_TAGS, html
        assert set(attrs) <= {"href", "title", "rel", "start"}, html
        href = attrs.get("href")
        if href is not None:
            assert re.match(r"^(https?:|mailto:|tel:|/|#)", href), html


def test_typed_html_is_shown_as_text_so_the_reader_sees_what_was_written() -> None:
    html = str(render("Do not open <script>alert(1)</script> attachments"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_ordinary_markdown_keeps_its_meaning() -> None:
    html = str(render("Some **bold** and *emphasis*.\n\n- one\n- two\n\n[Check a message](/verify-message), "
                      "[ICO](https://ico.org.uk) and [email us](mailto:help@example.org)"))
    assert "<strong>bold</strong>" in html and "<em>emphasis</em>" in html
    assert "<li>one</li>" in html
    assert 'href="/verify-message"' in html and 'href="https://ico.org.uk"' in html
    assert 'href="mailto:help@example.org"' in html


def test_headings_fit_under_the_page_heading_they_sit_below() -> None:
    html = str(render("# Big\n\ntext\n\n## Smaller", top=4))
    assert "<h4>Big</h4>" in html and "<h5>Smaller</h5>" in html
    assert "<h1" not in html and "<h2" not in html
    # An operator who starts at ## still gets the next level down, not a skipped one.
    assert "<h4>Start</h4>" in str(render("## Start\n\nx", top=4))


def test_plain_gives_the_words_without_markup() -> None:
    assert plain("Some **bold** [link](https://x.example)") == "Some bold link"
