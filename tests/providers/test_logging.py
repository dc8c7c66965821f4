"""Sending through the providers keeps the logs readable: no line per API request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.logs import configure_logging
from app.providers.base import PermanentProviderError, SmsMessage
from app.providers.twilio import TwilioSmsSender


@pytest.fixture
def portal_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("twilio.http_client").level
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    logging.getLogger("twilio.http_client").setLevel(saved[2])


def test_sms_sends_leave_no_log_line_per_request(portal_logging: None, twilio_sender: TwilioSmsSender,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", as_json=False)
    logging.getLogger("app.notices").info("sending starts")
    for n in range(5):
        twilio_sender.send(SmsMessage(to=f"+4477009001{n:02d}", body="Your notice", status_callback=None))
    lines = capsys.readouterr().err.splitlines()
    assert any("sending starts" in line for line in lines), "the portal's own INFO lines are still written"
    assert not [line for line in lines if "twilio" in line.lower()]


def test_a_refused_number_is_masked_in_the_error_and_any_contact_in_a_log_line_is_masked(
        portal_logging: None, twilio_sender: TwilioSmsSender, twilio_fake: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", as_json=False)
    twilio_fake.reject_number("+447700900999", code=21211)
    with pytest.raises(PermanentProviderError) as caught:
        twilio_sender.send(SmsMessage(to="+447700900999", body="Your notice", status_callback=None))
    assert "is not a valid phone number" in caught.value.reason and "7700900999" not in str(caught.value)
    log = logging.getLogger("app.notices")
    log.warning("could not reach %s or %s", "jo.bloggs@example.org", "07700 900999")
    try:
        raise ValueError("bounced: jo.bloggs@example.org")
    except ValueError:
        log.exception("unexpected")
    configure_logging("INFO", as_json=True)
    log.error("json too: %s", "+447700900999")
    err = capsys.readouterr().err
    assert "could not reach j***@example.org" in err and "bounced: j***@example.org" in err
    assert "jo.bloggs" not in err and "7700900999" not in err and "7700 900999" not in err
