"""No notice points to a missing page: the default notice templates, sent through the outbox provider, in
English and Welsh, by email and text message; every portal address in them answers 200 in that language."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.notices.models import Delivery
from app.providers.outbox import latest


def portal_addresses(text: str, base: str) -> set[str]:
    """Every address on our site in `text`, without the sentence's punctuation after it."""
    found = re.findall(re.escape(base) + r"[^\s<>\"'()]*", text)
    return {address.rstrip(".,;:!?") for address in found}


def test_every_portal_address_in_the_default_notices_answers_200_in_both_languages(
        client: TestClient, session: Session, sent_campaign: Any) -> None:
    sent_campaign()
    base = get_settings().PUBLIC_BASE_URL.rstrip("/")
    languages = dict(session.execute(select(Delivery.reference, Delivery.language)).all())
    messages = latest(session, last=10_000)
    to_follow: dict[tuple[str, str], set[str]] = {}
    for message in messages:
        lang = languages[message.reference]  # type: ignore[index]
        addresses = portal_addresses(f"{message.subject}\n{message.body}", base)
        assert addresses, f"a {message.channel} notice in {lang} names no portal address: {message.body!r}"
        to_follow.setdefault((message.channel, lang), set()).update(addresses)
    assert set(to_follow) == {("email", "en"), ("email", "cy"), ("sms", "en"), ("sms", "cy")}, set(to_follow)
    paths = {address[len(base):] or "/" for found in to_follow.values() for address in found}
    assert {"/check", "/verify-message", "/callback"} <= paths, paths

    for (channel, lang), addresses in sorted(to_follow.items()):
        for address in sorted(addresses):
            path = address[len(base):] or "/"
            page = client.get(path + ("&" if "?" in path else "?") + f"lang={lang}")
            assert page.status_code == 200, f"{address} in a {lang} {channel} notice answers {page.status_code}"
            assert f'<html lang="{lang}">' in page.text, f"{address} is not in {lang}"
