"""Operators' Markdown to HTML that is safe to put in a page.

Two layers, so neither alone has to be perfect: markdown-it-py with raw HTML switched off (a `<script>`
typed in the file comes out as text) and its link check (no `javascript:`, `vbscript:`, `file:` or
`data:` targets); then nh3 (ammonia) keeps only the tags, attributes and URL schemes listed here.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

# Images are off: the page's content policy would block other hosts anyway, and a notice page should
# not load what an operator linked to.
_parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).disable("image")

TAGS = {"p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a",
        "h2", "h3", "h4", "h5", "h6"}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto", "tel"}


@lru_cache(maxsize=2048)
def render(text: str, *, top: int = 4) -> Markup:
    """Safe HTML for `text`; its biggest heading becomes `<h{top}>` so the page's outline stays in order."""
    tokens = _parser.parse(text or "")
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    if levels:
        shift = top - min(levels)
        for t in tokens:
            if t.type in ("heading_open", "heading_close"):
                t.tag = f"h{min(max(int(t.tag[1]) + shift, 2), 6)}"
    html = _parser.renderer.render(tokens, _parser.options, {})
    return Markup(nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                            link_rel="noopener noreferrer"))


def plain(text: str) -> str:
    """The words of `text` without Markdown (for a feed summary or a page description)."""
    tokens = _parser.parseInline(text or "")
    words: list[str] = []
    for token in tokens:
        for child in token.children or []:
            if child.type in ("text", "code_inline"):
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
    return "".join(words)
