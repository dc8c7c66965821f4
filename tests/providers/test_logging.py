"""Sending through the providers keeps the logs readable: no line per API request."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from app.logs import configure_logging
from app.providers.base import SmsMessage
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
