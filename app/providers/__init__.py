"""Outbound email and SMS providers (SendGrid, Twilio, the outbox) behind small protocols."""

from __future__ import annotations

from app.config import Settings
from app.db import SessionFactory
from app.providers.base import EmailSender, SmsSender
from app.providers.outbox import EventsHook, OutboxEmailSender, OutboxSmsSender


def build_email_sender(settings: Settings, factory: SessionFactory, on_events: EventsHook | None = None) -> EmailSender:
    """SendGrid when an API key is configured, else the outbox."""
    if settings.SENDGRID_API_KEY:
        from app.providers.sendgrid import SendGridEmailSender

        return SendGridEmailSender(settings.SENDGRID_API_KEY.get_secret_value(), host=settings.SENDGRID_HOST,
                                   timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    return OutboxEmailSender(factory, on_events)


def build_sms_sender(settings: Settings, factory: SessionFactory, on_events: EventsHook | None = None) -> SmsSender:
    """Twilio when an account SID and auth token are configured, else the outbox."""
    if settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN:
        from app.providers.twilio import TwilioSmsSender

        return TwilioSmsSender(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN.get_secret_value(),
                               settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER,
                               settings.TWILIO_API_BASE, timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    return OutboxSmsSender(factory, on_events)
