"""A one-time code asked for while a campaign sends reaches the member long before the campaign ends.

Real `portal worker` and `portal serve` processes on PostgreSQL and Redis, the real Twilio SDK against
the fake Twilio: the code goes through the same provider and the same global pacing as the campaign's
texts, on its own queue and worker threads.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from app.members import pii
from tests.stack import wait_until

pytestmark = pytest.mark.scaled


def csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, page.text
    return match.group(1)


def test_a_code_asked_for_mid_campaign_arrives_while_thousands_are_still_queued(e2e: Any) -> None:
    # Slow enough that the campaign's texts take a minute or so: the limit every text shares.
    e2e.stack.env["PORTAL_TWILIO_MESSAGES_PER_SECOND"] = "50"
    e2e.stack.start_worker()
    number, phone_enc = e2e.sql("SELECT membership_number, phone_enc FROM members WHERE email_enc IS NULL "
                                "AND phone_enc IS NOT NULL ORDER BY id LIMIT 1")[0]
    phone = pii.open_phone(phone_enc)
    campaign_id = e2e.start_campaign("--channels", "sms")
    wait_until(lambda: len(e2e.twilio.messages) >= 100, 120, 0.1, what="the campaign's texts to be under way")

    with httpx.Client(base_url=e2e.stack.base_url, follow_redirects=False, timeout=10,
                      trust_env=False) as web:
        asked = web.post("/check", data={"identifier": number, "csrf_token": csrf(web, "/check")})
        assert asked.status_code == 303 and asked.headers["location"] == "/check/code"

        def code_text() -> Any:
            return next((m for m in e2e.twilio.messages if m.to == phone and "code" in m.body), None)

        message = wait_until(code_text, 60, 0.05, what="the code to reach the fake Twilio")
        still_queued = e2e.pending(campaign_id)
        sent_before_code = e2e.twilio.messages.index(message)
        print(f"the code arrived after {sent_before_code} campaign texts, with {still_queued} still to send")
        assert still_queued >= 1000, "the code went ahead of the campaign, not after it"

        code = re.search(r"\b(\d{6})\b", message.body).group(1)  # type: ignore[union-attr]
        checked = web.post("/check/code", data={"code": code, "csrf_token": csrf(web, "/check/code")})
        assert checked.status_code == 303 and checked.headers["location"] == "/status"
        status = web.get("/status")
        assert status.status_code == 200 and "Your status" in status.text

    rows = e2e.sql("SELECT status, attempts FROM transactional_messages")
    assert rows == [("sent", 1)]
