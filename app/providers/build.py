"""Building the providers from settings: the email and SMS senders, and the pacing every sender shares.

Campaigns and one-off messages both take their senders and their pacing from here, so there is one
provider limit for all traffic.
"""

from __future__ import annotations

from app.config import Settings
from app.db import SessionFactory
from app.kit.ratelimit import Limiter, LocalLimiter, RedisLimiter
from app.providers.base import EmailSender, SmsSender
from app.providers.outbox import EventsHook, OutboxEmailSender, OutboxSmsSender
from app.worker import coordination


def email_sender(settings: Settings, factory: SessionFactory, on_events: EventsHook | None = None) -> EmailSender:
    """SendGrid when an API key is configured, else the outbox."""
    if settings.SENDGRID_API_KEY:
        from app.providers.sendgrid import SendGridEmailSender

        return SendGridEmailSender(settings.SENDGRID_API_KEY.get_secret_value(), host=settings.SENDGRID_HOST,
                                   timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    return OutboxEmailSender(factory, on_events)


def sms_sender(settings: Settings, factory: SessionFactory, on_events: EventsHook | None = None) -> SmsSender:
    """Twilio when an account SID and auth token are configured, else the outbox."""
    if settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN:
        from app.providers.twilio import TwilioSmsSender

        return TwilioSmsSender(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN.get_secret_value(),
                               settings.TWILIO_MESSAGING_SERVICE_SID, settings.TWILIO_FROM_NUMBER,
                               settings.TWILIO_API_BASE, timeout=settings.PROVIDER_TIMEOUT_SECONDS)
    return OutboxSmsSender(factory, on_events)


def pacing(settings: Settings, channel: str) -> Limiter:
    """The provider's limit for a channel ("email": requests, "sms": messages), shared by every sender."""
    if channel == "email":
        return _shared(f"{settings.email_provider}:requests", settings.SENDGRID_REQUESTS_PER_SECOND)
    return _shared(f"{settings.sms_provider}:messages", settings.TWILIO_MESSAGES_PER_SECOND)


_limiters: dict[tuple[str, float], Limiter] = {}


def _shared(name: str, rate: float) -> Limiter:
    # In Redis (REDIS_URL or a Redis broker) so every worker process keeps one pace; else in-process.
    key = (name, rate)
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = (RedisLimiter(coordination, f"portal:ratelimit:{name}", rate) if coordination is not None
                   else LocalLimiter(rate))
        _limiters[key] = limiter
    return limiter
