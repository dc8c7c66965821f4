"""Plain pytest fixtures for the provider fakes; import them into a conftest or a test module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from app.providers.sendgrid import SendGridEmailSender
from app.providers.twilio import TwilioSmsSender

from .base import WebhookSink
from .sendgrid_server import FakeSendGrid
from .twilio_server import FakeTwilio

__all__ = [
    "loopback_no_proxy",
    "sendgrid_fake",
    "sendgrid_sender",
    "twilio_fake",
    "twilio_sender",
    "webhook_sink",
]

FAKE_MESSAGING_SERVICE_SID = "MG" + "0" * 32
FAKE_SENDER_TIMEOUT = 5.0


@pytest.fixture
def loopback_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep both SDKs (which honour *_proxy env vars) off any proxy for loopback calls."""
    for name in ("no_proxy", "NO_PROXY"):
        current = os.environ.get(name, "")
        monkeypatch.setenv(name, ",".join(filter(None, [current, "127.0.0.1", "localhost"])))
    for name in ("TWILIO_EDGE", "TWILIO_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def sendgrid_fake(loopback_no_proxy: None) -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def twilio_fake(loopback_no_proxy: None) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def sendgrid_sender(sendgrid_fake: FakeSendGrid) -> SendGridEmailSender:
    return SendGridEmailSender(sendgrid_fake.api_key, host=sendgrid_fake.url, timeout=FAKE_SENDER_TIMEOUT)


@pytest.fixture
def twilio_sender(twilio_fake: FakeTwilio) -> TwilioSmsSender:
    return TwilioSmsSender(
        twilio_fake.account_sid,
        twilio_fake.auth_token,
        messaging_service_sid=FAKE_MESSAGING_SERVICE_SID,
        from_number=None,
        api_base=twilio_fake.url,
        timeout=FAKE_SENDER_TIMEOUT,
    )
