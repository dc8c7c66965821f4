"""The Markdown files operators write: split into a page's parts, or refused with a message that says why."""

from __future__ import annotations

import pytest

from app.incidents import content
from app.incidents.content import ContentProblem

from .conftest import INCIDENT_CY, INCIDENT_EN


def test_an_incident_file_gives_title_summary_and_three_sections_in_order() -> None:
    text = content.parse_incident(INCIDENT_EN)
    assert text.title == "Attack on our systems"
    assert text.summary == "We found malware on our servers."
    assert text.happened == "Ransomware reached **three databases**."
    assert text.doing == "We told the regulator on 11 March."
    assert text.advice.startswith("Check any message")
    assert content.parse_incident(INCIDENT_CY).title == "Ymosodiad ar ein systemau"


def test_a_heading_inside_a_code_block_is_not_a_section() -> None:
    text = content.parse_incident(INCIDENT_EN.replace("Ransomware", "```\n## not a section\n```\nRansomware"))
    assert "## not a section" in text.happened and text.doing == "We told the regulator on 11 March."


def test_windows_line_endings_and_a_byte_order_mark_are_fine() -> None:
    text = content.parse_incident("\ufeff" + INCIDENT_EN.replace("\n", "\r\n"))
    assert text.title == "Attack on our systems" and "\r" not in text.happened


@pytest.mark.parametrize(("source", "says"), [
    (INCIDENT_EN.replace("## What you should do", "### What you should do"), "exactly three"),
    (INCIDENT_EN + "\n## A fourth\n\nx\n", "it has 4"),
    (INCIDENT_EN.replace("# Attack on our systems\n", ""), "must start with one title line"),
    (INCIDENT_EN.replace("We found malware on our servers.\n", ""), "short summary"),
    (INCIDENT_EN.replace("We told the regulator on 11 March.\n", ""), "is empty"),
    (INCIDENT_EN.replace("Attack on our systems", "A" * 201), "longer than 200"),
    (INCIDENT_EN.replace("three", "th\u202eree"), "line 7: remove the right-to-left"),
    (INCIDENT_EN.replace("three", "th\x00ree"), "control character U+0000"),
    ("x" * 100_001, "longer than 100,000"),
])
def test_a_wrong_incident_file_is_refused_with_the_reason(source: str, says: str) -> None:
    with pytest.raises(ContentProblem) as refused:
        content.parse_incident(source, what="incident.en.md")
    assert says in refused.value.message and "incident.en.md" in refused.value.message


def test_an_update_is_a_title_and_its_text() -> None:
    update = content.parse_update("# Helpline open\n\nCall us from 8am.\n\nEvery day.")
    assert update.title == "Helpline open" and update.body == "Call us from 8am.\n\nEvery day."
    with pytest.raises(ContentProblem, match="below its title"):
        content.parse_update("# Only a title\n")
    with pytest.raises(ContentProblem, match="title line"):
        content.parse_update("No title here")


def test_a_faq_is_questions_and_answers_in_order() -> None:
    faq = content.parse_faq("## Was I affected?\n\nCheck.\n\n## Will I be paid?\n\nNo **compensation**.\n")
    assert [(q.question, q.answer) for q in faq] == [("Was I affected?", "Check."),
                                                     ("Will I be paid?", "No **compensation**.")]
    with pytest.raises(ContentProblem, match="text before the first"):
        content.parse_faq("Intro\n\n## Q\n\nA")
    with pytest.raises(ContentProblem, match="has no answer"):
        content.parse_faq("## Q1\n\n## Q2\n\nA")
    with pytest.raises(ContentProblem, match="no questions"):
        content.parse_faq("")


def test_guidance_is_the_whole_file_and_not_empty() -> None:
    assert content.parse_guidance("\n Call **159**.\n") == "Call **159**."
    with pytest.raises(ContentProblem, match="empty"):
        content.parse_guidance("  \n")
