"""The Markdown files operators write: split into a page's parts, or refused with a message that says why."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.incidents import content
from app.incidents import service as incident_service
from app.incidents.content import ContentProblem
from app.lookup.service import forget_incident_advice, member_status
from app.notices.models import Delivery
from app.providers.outbox import latest

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


# --- one source of guidance per category: notices, the incident page and the status page say the same ----------
def as_message_text(fragment: str, base: str) -> str:
    """A page's guidance as a message carries it: each link's words followed by its whole address."""
    def link(match: re.Match[str]) -> str:
        href = html.unescape(match.group(1))
        return f"{match.group(2)} ({base + href if href.startswith('/') else href})"

    text = re.sub(r'(?s)<a href="([^"]*)"[^>]*>(.*?)</a>', link, fragment)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"(?s)<[^>]+>", " ", text))).strip()


def notice_guidance(body: str) -> dict[str, str]:
    """Category name -> guidance, from the "- Name: guidance" lines of a default notice's text."""
    return dict(line[2:].split(": ", 1) for line in body.splitlines() if line.startswith("- ") and ": " in line)


def test_each_category_gives_the_same_guidance_in_notices_on_the_incident_page_and_the_status_page(
        client: TestClient, session: Session, sent_campaign: Any) -> None:
    sent_campaign(channels=("email",))
    base = get_settings().PUBLIC_BASE_URL.rstrip("/")
    deliveries = {d.reference: d for d in session.execute(select(Delivery)).scalars()}
    forget_incident_advice()
    compared: dict[str, set[str]] = {"en": set(), "cy": set()}
    on_page_en: dict[str, str] = {}
    for lang in ("en", "cy"):
        page = client.get(f"/?lang={lang}").text
        names = {(c.name_cy or c.name) if lang == "cy" else c.name
                 for c in incident_service.categories_by_code(session).values()}
        on_page = {html.unescape(name): as_message_text(body, base) for name, body in
                   re.findall(r'(?s)<h4>([^<]+)</h4>\s*<div class="prose">(.*?)</div>', page)
                   if html.unescape(name) in names}
        on_page_en = on_page if lang == "en" else on_page_en
        assert len(on_page) >= 5, "the demo incident gives guidance for five categories"
        for message in latest(session, last=10_000):
            delivery = deliveries[str(message.reference)]
            if delivery.language != lang:
                continue
            in_notice = notice_guidance(message.body)
            status = member_status(session, member_id=delivery.member_id, language=lang)
            on_status = {c.name: as_message_text(str(c.guidance), base)
                         for item in status.incidents for c in item.categories}
            assert in_notice and in_notice.keys() == on_status.keys()
            for name, guidance in in_notice.items():
                assert guidance == on_status[name], f"{lang} {name}: the notice and the status page differ"
                if name in on_page:
                    assert guidance == on_page[name], f"{lang} {name}: the notice and the incident page differ"
                    compared[lang].add(name)
    assert compared["en"] == set(on_page_en), "every category on the page was in some notice"
    assert compared["cy"], "Welsh notices were compared with the Welsh page"
    assert "call 159" in " ".join(notice_guidance(m.body).get("Bank account details", "") for m in
                                  latest(session, last=10_000))


def test_the_verify_page_has_one_name_in_every_category_s_guidance(session: Session) -> None:
    for category in incident_service.categories_by_code(session).values():
        for text in (category.guidance, category.guidance_cy):
            assert "Verify a message" not in text and "tudalen Gwirio neges" not in text
    police = incident_service.categories_by_code(session)["police_email"]
    assert "Check a message is from us" in police.guidance and "Gwirio bod neges gennym ni" in police.guidance_cy


def test_welsh_notices_and_messages_name_the_organisation_in_welsh(session: Session, sent_campaign: Any) -> None:
    sent_campaign()
    languages = dict(session.execute(select(Delivery.reference, Delivery.language)).all())
    welsh = [m for m in latest(session, last=10_000) if languages[m.reference] == "cy"]
    assert {m.channel for m in welsh} == {"email", "sms"}
    for message in welsh:
        assert "Police Staff Association" not in message.subject + message.body
        assert "Cymdeithas Staff yr Heddlu" in message.subject + message.body


def test_a_guidance_file_reads_the_same_as_plain_text_with_addresses_written_out() -> None:
    text = content.guidance_as_text("Use [Cifas](https://www.cifas.org.uk/pr) or our\n[checker](/verify-message).\n\n"
                                    "Then *wait*.", base_url="https://portal.example.org/")
    assert text == ("Use Cifas (https://www.cifas.org.uk/pr) or our checker "
                    "(https://portal.example.org/verify-message). Then wait.")
