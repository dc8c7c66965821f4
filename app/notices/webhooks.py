"""Checking that a webhook really comes from the provider, and is fresh (the signatures: app/providers)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from prometheus_client import Counter
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.errors import Forbidden
from app.notices.repository import ProviderEventRepository
from app.notices.webhook_schemas import Rejected
from app.providers import signatures

SENDGRID_SIGNATURE = signatures.SENDGRID_SIGNATURE
SENDGRID_TIMESTAMP = signatures.SENDGRID_TIMESTAMP
TWILIO_SIGNATURE = signatures.TWILIO_SIGNATURE


REJECTED_EVENTS = Counter("portal_webhook_events_rejected_total",
                          "Signed webhook events that could not be applied (kept as 'rejected' provider events)",
                          ["provider"])


class BadSignature(Forbidden):
    pass


def record_rejected(session: Session, *, provider: str, rejected: Sequence[Rejected]) -> int:
    """Keep each event that could not be applied, with why and nothing of its content; returns how many were new."""
    if not rejected:
        return 0
    REJECTED_EVENTS.labels(provider).inc(len(rejected))
    now = utcnow()
    rows = {r.event_id: {"provider": provider, "event_id": r.event_id, "event": "rejected", "delivery_id": None,
                         "payload": {"reason": r.reason}, "occurred_at": None, "received_at": now}
            for r in rejected}
    return len(ProviderEventRepository(session).insert_new(list(rows.values())))


def verify_sendgrid(settings: Settings, body: bytes, headers: Mapping[str, str], now: float | None = None) -> str:
    """The payload as text if the ECDSA signature matches and the timestamp is fresh; else BadSignature."""
    if not settings.SENDGRID_WEBHOOK_PUBLIC_KEY:
        raise BadSignature("SendGrid event webhook verification key is not configured")
    signature = headers.get(SENDGRID_SIGNATURE)
    timestamp = headers.get(SENDGRID_TIMESTAMP)
    if not signature or not timestamp:
        raise BadSignature("missing signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise BadSignature("bad timestamp") from None
    now = time.time() if now is None else now
    if abs(now - sent_at) > settings.WEBHOOK_MAX_AGE_SECONDS:
        raise BadSignature("stale or future timestamp")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSignature("signature does not match") from None
    if not signatures.sendgrid_signature_valid(settings.SENDGRID_WEBHOOK_PUBLIC_KEY, payload, signature, timestamp):
        raise BadSignature("signature does not match")
    return payload


def verify_twilio(settings: Settings, path_and_query: str, params: Mapping[str, str],
                  headers: Mapping[str, str]) -> None:
    """Twilio signs the public URL it called plus the form fields; we check against PUBLIC_BASE_URL."""
    if not settings.TWILIO_AUTH_TOKEN:
        raise BadSignature("Twilio auth token is not configured")
    signature = headers.get(TWILIO_SIGNATURE)
    if not signature:
        raise BadSignature("missing signature")
    url = settings.PUBLIC_BASE_URL.rstrip("/") + path_and_query
    if not signatures.twilio_signature_valid(settings.TWILIO_AUTH_TOKEN.get_secret_value(), url, params, signature,
                                             headers.get(signatures.TWILIO_SIGNATURE_SETTINGS)):
        raise BadSignature("signature does not match")
