"""Loopback fakes of SendGrid and Twilio for tests, benchmarks and local development."""

from .base import Fault, ReceivedWebhook, WebhookSink
from .sendgrid_server import FakeSendGrid, SentEmail
from .twilio_server import FakeTwilio, SentSms

__all__ = ["FakeSendGrid", "FakeTwilio", "Fault", "ReceivedWebhook", "SentEmail", "SentSms", "WebhookSink"]
