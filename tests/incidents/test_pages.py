"""The public incident pages, the Atom feed and the statements, in English and Welsh, as a reader gets them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.i18n import LOCALE_DIR
from app.incidents import content
from app.incidents import service as incident_service

from .conftest import post_update, visible_text, write_incident

A = "{http://www.w3.org/2005/Atom}"


def publish(session: Session) -> None:
    write_incident(session, code="web-1")
    incident_service.set_faq(session, code="web-1", en=content.parse_faq("## Was I affected?\n\nCheck online."),
                             cy=content.parse_faq("## A effeithiwyd arnaf?\n\nGwiriwch ar-lein."), actor="a")
    incident_service.set_guidance(session, code="web-1", category="bank_details", en="Call your bank on 159.",
                                  cy="Ffoniwch eich banc ar 159.", actor="a")
    post_update(session, code="web-1", title="Notices sent", body="We wrote to **every** member.",
                title_cy="Hysbysiadau wedi'u hanfon", body_cy="Ysgrifennom at **bob** aelod.",
                at=datetime(2019, 3, 21, 9, tzinfo=UTC))
    post_update(session, code="web-1", at=datetime(2019, 3, 22, 8, tzinfo=UTC))
    write_incident(session, code="draft-1", publish=False)
    session.commit()


def test_the_incident_page_has_every_part_in_english(client: TestClient, session: Session) -> None:
    publish(session)
    page = client.get("/?lang=en")
    assert page.status_code == 200
    text = visible_text(page.text)
    for part in ("Attack on our systems", "We found malware on our servers.", "What happened",
                 "Ransomware reached three databases.", "What we are doing", "What you should do",
                 "Bank account details", "Call your bank on 159.", "Questions and answers", "Was I affected?",
                 "Updates", "Notices sent", "We wrote to every member.", "Our helpline", "We are open 9am to 5pm.",
                 "report@phishing.gov.uk", "7726", "Discovered on 9 March 2019", "Last updated on 22 March 2019"):
        assert part in text, part
    assert "<strong>three databases</strong>" in page.text
    assert 'href="/updates/web-1/1"' in page.text and 'href="/updates/web-1/2"' in page.text
    assert text.index("Helpline open") < text.index("Notices sent"), "newest update first"
    assert "Ymosodiad" not in text and "draft" not in text.lower()


def test_the_incident_page_in_welsh(client: TestClient, session: Session) -> None:
    publish(session)
    text = visible_text(client.get("/?lang=cy").text)
    for part in ("Ymosodiad ar ein systemau", "Beth ddigwyddodd", "Beth rydym yn ei wneud", "Beth y dylech ei wneud",
                 "Manylion cyfrif banc", "Ffoniwch eich banc ar 159.", "Cwestiynau ac atebion", "A effeithiwyd arnaf?",
                 "Hysbysiadau wedi'u hanfon", "Rydym ar agor rhwng 9am a 5pm.", "Darganfuwyd ar 9 Mawrth 2019"):
        assert part in text, part


def test_each_update_has_its_own_page(client: TestClient, session: Session) -> None:
    publish(session)
    page = client.get("/updates/web-1/1")
    assert page.status_code == 200
    text = visible_text(page.text)
    assert "Notices sent" in text and "We wrote to every member." in text and "21 March 2019" in text
    assert "Attack on our systems" in text and 'href="/#incident-web-1-updates"' in page.text
    assert "Hysbysiadau wedi'u hanfon" in visible_text(client.get("/updates/web-1/1?lang=cy").text)
    assert client.get("/updates/web-1/9").status_code == 404
    assert client.get("/updates/draft-1/1").status_code == 404
    for wrong in ("/updates/web-1/x", "/updates/web-1/-1", "/updates/web-1/99999999999", "/updates/web-1/%C2%B2"):
        answer = client.get(wrong + "?lang=en")
        assert answer.status_code == 404 and "Page not found" in answer.text, wrong


def test_what_operators_write_reaches_the_page_escaped(client: TestClient, session: Session) -> None:
    write_incident(session, code="web-2")
    post_update(session, code="web-2", title="<script>alert('t')</script>",
                body="<img src=x onerror=alert(1)> [click](javascript:alert(1)) <b>bold?</b>")
    session.commit()
    page = client.get("/").text
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert 'href="javascript' not in page
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in page


def parse_feed(client: TestClient, url: str) -> ET.Element:
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    return ET.fromstring(answer.content)


def _when(element: ET.Element | None) -> datetime:
    assert element is not None and element.text
    return datetime.fromisoformat(element.text.replace("Z", "+00:00"))


def test_the_atom_feed_is_valid_and_lists_every_update(client: TestClient, session: Session) -> None:
    publish(session)
    feed = parse_feed(client, "/updates.atom?lang=en")
    assert feed.tag == f"{A}feed" and feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    # RFC 4287: a feed has one id, title and updated, an author (or every entry has one), and a self link.
    for required in ("id", "title", "updated"):
        assert len(feed.findall(f"{A}{required}")) == 1, required
    assert feed.findtext(f"{A}author/{A}name")
    self_link = [link for link in feed.findall(f"{A}link") if link.get("rel") == "self"]
    assert len(self_link) == 1 and self_link[0].get("href", "").endswith("/updates.atom")
    entries = feed.findall(f"{A}entry")
    assert [e.findtext(f"{A}title") for e in entries] == ["Helpline open", "Notices sent"]
    ids = [e.findtext(f"{A}id") for e in entries]
    assert len(set(ids)) == 2 and all(i and i.startswith("tag:") for i in ids)
    for entry in entries:
        assert _when(entry.find(f"{A}updated")) <= _when(feed.find(f"{A}updated"))
        alternate = [link for link in entry.findall(f"{A}link") if link.get("rel") == "alternate"]
        assert len(alternate) == 1 and re.search(r"/updates/web-1/\d$", alternate[0].get("href", ""))
        assert entry.find(f"{A}content") is not None and entry.find(f"{A}content").get("type") == "html"  # type: ignore[union-attr]
    assert "<strong>every</strong>" in (entries[1].findtext(f"{A}content") or "")
    assert "draft-1" not in client.get("/updates.atom").text


def test_the_welsh_feed_is_its_own_feed(client: TestClient, session: Session) -> None:
    publish(session)
    english = parse_feed(client, "/updates.atom?lang=en")
    welsh = parse_feed(client, "/updates.atom?lang=cy")
    assert welsh.get("{http://www.w3.org/XML/1998/namespace}lang") == "cy"
    assert welsh.findtext(f"{A}title") == "Diweddariadau am y digwyddiad"
    assert [e.findtext(f"{A}title") for e in welsh.findall(f"{A}entry")] == ["Llinell gymorth ar agor",
                                                                            "Hysbysiadau wedi'u hanfon"]
    assert welsh.findtext(f"{A}id") != english.findtext(f"{A}id")
    assert not {e.findtext(f"{A}id") for e in welsh.findall(f"{A}entry")} & {
        e.findtext(f"{A}id") for e in english.findall(f"{A}entry")}
    assert all(link.get("href", "").endswith("?lang=cy") for e in welsh.findall(f"{A}entry")
               for link in e.findall(f"{A}link"))


def test_an_empty_feed_is_still_valid(client: TestClient) -> None:
    feed = parse_feed(client, "/updates.atom")
    assert feed.findtext(f"{A}id") and feed.findtext(f"{A}updated") and feed.findall(f"{A}entry") == []


@pytest.mark.parametrize(("path", "heading", "heading_cy"), [
    ("/accessibility", "Accessibility statement", "Datganiad hygyrchedd"),
    ("/privacy", "Privacy notice", "Hysbysiad preifatrwydd"),
])
def test_the_statements_have_their_own_pages_linked_from_every_footer(client: TestClient, path: str, heading: str,
                                                                       heading_cy: str) -> None:
    page = client.get(f"{path}?lang=en")
    assert page.status_code == 200 and f"<h1>{heading}</h1>" in page.text
    assert f"<h1>{heading_cy}</h1>" in client.get(f"{path}?lang=cy").text
    for other in ("/", "/verify-message", "/no-such-page"):
        assert f'href="{path}"' in client.get(other).text, other


def english_phrases() -> list[str]:
    """Every English sentence in the catalog long enough that it cannot also be Welsh."""
    with (LOCALE_DIR / "cy" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="cy")
    phrases = []
    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string and message.string != message.id:
            words = re.split(r"%\(\w+\)s", message.id)
            phrases.extend(w.strip() for w in words if len(w.strip()) >= 12)
    return phrases


@pytest.mark.parametrize("path", ["/", "/updates/web-1/1", "/accessibility", "/privacy", "/verify-message",
                                  "/no-such-page"])
def test_no_english_is_left_on_a_welsh_page(client: TestClient, session: Session, path: str) -> None:
    publish(session)
    text = visible_text(client.get(f"{path}{'&' if '?' in path else '?'}lang=cy").text)
    left = [p for p in english_phrases() if p in text]
    assert not left, left
    assert "What happened" not in text and "Helpline" not in text
    assert "Police Staff Association" not in text and "Cymdeithas Staff yr Heddlu" in text


def test_the_organisation_has_its_welsh_name_on_welsh_pages() -> None:
    from app.config import Settings

    assert Settings().organisation_name("cy") == "Cymdeithas Staff yr Heddlu"
    assert Settings().organisation_name("en") == "Police Staff Association"
    renamed = Settings(ORGANISATION_NAME="Police Federation")
    assert renamed.organisation_name("cy") == "Police Federation", "never a Welsh name for another organisation"
    both = Settings(ORGANISATION_NAME="Police Federation", ORGANISATION_NAME_CY="Ffederasiwn yr Heddlu")
    assert both.organisation_name("cy") == "Ffederasiwn yr Heddlu"
    assert both.organisation_name("en") == "Police Federation"
