"""Checking that a webhook really comes from the provider, and is fresh."""

from __future__ import annotations

import binascii
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

from app.config import Settings
from app.errors import Forbidden

SENDGRID_SIGNATURE = EventWebhookHeader.SIGNATURE
SENDGRID_TIMESTAMP = EventWebhookHeader.TIMESTAMP
TWILIO_SIGNATURE = "X-Twilio-Signature"


class BadSignature(Forbidden):
    pass


@lru_cache(maxsize=4)
def _sendgrid_key(public_key: str) -> Any:
    return EventWebhook().convert_public_key_to_ecdsa(public_key)


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
        key = _sendgrid_key(settings.SENDGRID_WEBHOOK_PUBLIC_KEY)
        valid = EventWebhook().verify_signature(payload, signature, timestamp, key)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        valid = False
    if not valid:
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
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN.get_secret_value())
    # Twilio may announce HMAC-SHA256 in a settings header; without it the signature is HMAC-SHA1.
    algorithm = get_signature_algorithm(headers.get(SIGNATURE_SETTINGS_HEADER))
    if not validator.validate(url, dict(params), signature, algorithm=algorithm):
        raise BadSignature("signature does not match")
