"""Provider webhook signatures, checked with the SDKs' own helpers (the SDKs stay inside app/providers/)."""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm

SENDGRID_SIGNATURE: str = EventWebhookHeader.SIGNATURE
SENDGRID_TIMESTAMP: str = EventWebhookHeader.TIMESTAMP
TWILIO_SIGNATURE = "X-Twilio-Signature"
TWILIO_SIGNATURE_SETTINGS: str = SIGNATURE_SETTINGS_HEADER


@lru_cache(maxsize=4)
def _sendgrid_key(public_key: str) -> Any:
    return EventWebhook().convert_public_key_to_ecdsa(public_key)


def sendgrid_signature_valid(public_key: str, payload: str, signature: str, timestamp: str) -> bool:
    """Whether SendGrid's ECDSA P-256 signature covers `timestamp + payload`; garbage is simply invalid."""
    try:
        key = _sendgrid_key(public_key)
        return bool(EventWebhook().verify_signature(payload, signature, timestamp, key))
    except (binascii.Error, ValueError, TypeError):  # a non-base64 signature or key raises, not False
        return False


def twilio_signature_valid(auth_token: str, url: str, params: Mapping[str, str], signature: str,
                           settings_header: str | None = None) -> bool:
    """Whether Twilio's signature covers the public `url` plus the form fields."""
    validator = RequestValidator(auth_token)
    # Twilio may announce HMAC-SHA256 in a settings header; without it the signature is HMAC-SHA1.
    algorithm = get_signature_algorithm(settings_header)
    return bool(validator.validate(url, dict(params), signature, algorithm=algorithm))
