"""Verify a message: is the reference code printed in a message one of ours, and when and how did it go?

Every message we send ends with one: a notice's, and a one-off message's (a one-time code, a callback
confirmation) in the same format. The answer names a date and a channel and nothing else: no name, no
contact, no campaign, not even which kind of message. References are 60 random bits, so typing guesses
finds nothing; the request limits stop anyone trying hard.

A callback request's own reference (CB-XXXX-XXXX) is not a message's: the page explains that rather than
confirming it, so it cannot be used to learn whether someone asked us to call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.config import get_settings
from app.kit.clock import UK
from app.messages import service as transactional
from app.notices import service as notice_service

# Crockford's base 32 (no I, L, O or U), as XXXX-XXXX-XXXX.
_SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
_PREFIXES = ("REF", "CYF")  # as printed in the text message: "Ref ABCD-..." / "Cyf ABCD-..."


@dataclass(frozen=True)
class Verdict:
    reference: str
    genuine: bool
    sent_on: date | None = None
    channel: str | None = None


def canonical_reference(text: str) -> str | None:
    """The reference as we print it, from what a person typed or read aloud; None if it cannot be one of ours."""
    raw = "".join(c for c in unicodedata.normalize("NFKC", text).upper() if c.isascii() and c.isalnum())
    for prefix in _PREFIXES:
        if len(raw) == 12 + len(prefix) and raw.startswith(prefix):
            raw = raw[len(prefix):]
    raw = raw.translate(str.maketrans("OIL", "011"))
    if len(raw) != 12:
        return None
    shaped = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
    return shaped if _SHAPE.match(shaped) else None


def looks_like_callback_reference(text: str) -> bool:
    """True for what reads as a callback request's reference, "CB-" and eight letters and numbers."""
    raw = "".join(c for c in unicodedata.normalize("NFKC", text).upper() if c.isascii() and c.isalnum())
    return len(raw) == 10 and raw.startswith("CB")


def reference_hash(reference: str) -> str:
    """A keyed hash of a reference for the audit trail: repeated fakes can be counted, not read back."""
    key = hashlib.sha256(b"portal.verify-message\x00" + get_settings().SECRET_KEY.get_secret_value().encode()).digest()
    return hmac.new(key, reference.encode(), hashlib.sha256).hexdigest()


def verify_message(session: Session, *, reference: str) -> Verdict:
    """Whether `reference` (already canonical) is on a notice we sent; audited by a keyed hash of the code."""
    sent = notice_service.sent_notice(session, reference=reference) or transactional.sent_message(
        session, reference=reference)
    audit_service.record(session, actor="public", action="message.verify", genuine=sent is not None,
                         channel=sent.channel if sent else None, reference_hash=reference_hash(reference))
    if sent is None:
        return Verdict(reference, genuine=False)
    return Verdict(reference, genuine=True, sent_on=sent.sent_at.astimezone(UK).date(), channel=sent.channel)
