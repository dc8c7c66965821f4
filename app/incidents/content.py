"""The Markdown files operators write, split into the parts of a page, with clear refusals.

Formats (the headings' own words are for the writer; the page shows its own translated headings):
- incident: `# Title`, the summary, then exactly three `## ` sections in this order: what happened,
  what we are doing, what you should do;
- update: `# Title`, then the body;
- FAQ: one `## Question` per entry, each followed by its answer;
- guidance: the whole file is the guidance for one data category. The same text is the category's guidance
  on the incident page, on a member's status page and in notices (`guidance_as_text`): one source each.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urljoin

from markdown_it import MarkdownIt
from markdown_it.token import Token

from app.errors import AppError

MAX_FILE_CHARS = 100_000
MAX_TITLE = 200
MAX_QUESTION = 300
# Bidirectional overrides and isolates can make text read differently from what it says ("Trojan
# Source"); English and Welsh never need them.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_parser = MarkdownIt("commonmark")


class ContentProblem(AppError):
    status_code = 422


@dataclass(frozen=True)
class IncidentText:
    title: str
    summary: str
    happened: str
    doing: str
    advice: str


@dataclass(frozen=True)
class UpdateText:
    title: str
    body: str


@dataclass(frozen=True)
class Question:
    question: str
    answer: str


def has_unsafe_characters(text: str) -> bool:
    """True when `text` holds a control character or a bidirectional override."""
    return bool(_BIDI.search(text)) or any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text)


def _clean(text: str, what: str) -> str:
    if len(text) > MAX_FILE_CHARS:
        raise ContentProblem(f"{what} is longer than {MAX_FILE_CHARS:,} characters")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    for number, line in enumerate(text.split("\n"), start=1):
        if _BIDI.search(line):
            raise ContentProblem(f"{what}, line {number}: remove the right-to-left or left-to-right override")
        bad = [c for c in line if unicodedata.category(c) == "Cc" and c != "\t"]
        if bad:
            raise ContentProblem(f"{what}, line {number}: remove the control character U+{ord(bad[0]):04X}")
    return unicodedata.normalize("NFC", text)


def _sections(text: str, level: int) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first heading of `level`, then (heading, body) for each such heading."""
    lines = text.split("\n")
    tag = f"h{level}"
    starts = [(t.map[0], t.map[1], tokens_inline.content.strip())
              for t, tokens_inline in _heading_pairs(text) if t.tag == tag and t.map]
    head = "\n".join(lines[: starts[0][0]] if starts else lines).strip()
    sections = []
    for i, (_start, end, heading) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(lines)
        sections.append((heading, "\n".join(lines[end:stop]).strip()))
    return head, sections


def _heading_pairs(text: str) -> list[tuple[Token, Token]]:
    tokens = _parser.parse(text)
    return [(t, tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "heading_open"]


def _title(text: str, what: str) -> tuple[str, str]:
    """The `# Title` that must open the file, and the rest."""
    head, sections = _sections(text, 1)
    if head or len(sections) != 1:
        raise ContentProblem(f"{what} must start with one title line `# Title` (and have no other `# ` heading)")
    title, rest = sections[0]
    if not title:
        raise ContentProblem(f"{what}: the title is empty")
    if len(title) > MAX_TITLE:
        raise ContentProblem(f"{what}: the title is longer than {MAX_TITLE} characters")
    return title, rest


def parse_incident(text: str, *, what: str = "the incident file") -> IncidentText:
    """Title, summary and the three sections of an incident page."""
    title, rest = _title(_clean(text, what), what)
    summary, sections = _sections(rest, 2)
    if len(sections) != 3:
        raise ContentProblem(f"{what} needs exactly three `## ` sections (what happened, what we are doing, "
                             f"what you should do); it has {len(sections)}")
    if not summary:
        raise ContentProblem(f"{what}: write a short summary between the title and the first `## ` section")
    empty = [heading for heading, body in sections if not body]
    if empty:
        raise ContentProblem(f"{what}: the section {empty[0]!r} is empty")
    return IncidentText(title, summary, *(body for _, body in sections))


def parse_update(text: str, *, what: str = "the update file") -> UpdateText:
    """Title and body of a dated update."""
    title, body = _title(_clean(text, what), what)
    if not body:
        raise ContentProblem(f"{what}: write the update below its title")
    return UpdateText(title, body)


def parse_faq(text: str, *, what: str = "the FAQ file") -> list[Question]:
    """The questions (`## ` headings) and their answers, in order."""
    head, sections = _sections(_clean(text, what), 2)
    if head:
        raise ContentProblem(f"{what}: every question is a `## ` heading; there is text before the first one")
    if not sections:
        raise ContentProblem(f"{what} has no questions (`## Question` followed by its answer)")
    for heading, answer in sections:
        if len(heading) > MAX_QUESTION:
            raise ContentProblem(f"{what}: the question {heading[:40]!r}... is longer than {MAX_QUESTION} characters")
        if not heading or not answer:
            raise ContentProblem(f"{what}: the question {heading!r} has no answer")
    return [Question(h, a) for h, a in sections]


def parse_guidance(text: str, *, what: str = "the guidance file") -> str:
    """The guidance text for one data category."""
    body = _clean(text, what).strip()
    if not body:
        raise ContentProblem(f"{what} is empty")
    return body


def guidance_as_text(text: str, *, base_url: str) -> str:
    """Guidance Markdown as the plain text a message carries: the same words as the page, on one line, each
    link's address written out after its words (a relative one made whole against `base_url`), since a
    message tells its reader to type our address rather than follow links."""
    parts: list[str] = []
    for block in _parser.parse(text or ""):
        if block.type != "inline" or not block.children:
            continue
        words: list[str] = []
        href: str | None = None
        for token in block.children:
            if token.type in ("text", "code_inline", "html_inline"):
                words.append(token.content)
            elif token.type in ("softbreak", "hardbreak"):
                words.append(" ")
            elif token.type == "link_open":
                href = str(token.attrs.get("href") or "")
            elif token.type == "link_close" and href:
                address = urljoin(base_url.rstrip("/") + "/", href) if href.startswith("/") else href
                words.append(f" ({address})")
                href = None
        parts.append("".join(words).strip())
    return " ".join(p for p in parts if p)
