"""The outbox provider of the embedded default: keeps each message (encrypted) and simulates delivery events.

It stands in for SendGrid and Twilio with no credentials configured, so an admin can see exactly what
members would receive. The events it simulates go through the same code the webhooks use.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import SessionFactory, session_scope, utcnow
from app.members import pii
from app.providers.base import EmailBatch, EmailBatchResult, SmsMessage, SmsResult
from app.providers.models import OutboxMessage

TO_CONTEXT = b"outbox.to"
SUBJECT_CONTEXT = b"outbox.subject"
BODY_CONTEXT = b"outbox.body"
_REFERENCE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")

# kind ("sendgrid" or "twilio"), then a list of SendGrid events or one Twilio (params, delivery id).
EventsHook = Callable[[str, Any], None]


def _substitute(text: str, substitutions: dict[str, str]) -> str:
    for key, value in substitutions.items():
        text = text.replace(key, value)
    return text


def _to_index(address: str) -> str:
    return pii.keyring().blind_index(address.strip().lower(), kind="outbox")


class OutboxEmailSender:
    def __init__(self, factory: SessionFactory, on_events: EventsHook | None = None) -> None:
        self.factory = factory
        self.on_events = on_events

    def send_batch(self, batch: EmailBatch) -> EmailBatchResult:
        keys = pii.keyring()
        x_message_id = "outbox-" + uuid.uuid4().hex
        events: list[dict[str, Any]] = []
        now = utcnow()
        with session_scope(self.factory) as session:
            for index, recipient in enumerate(batch.recipients):
                subject = _substitute(batch.subject, recipient.substitutions)
                body = _substitute(batch.text, recipient.substitutions)
                delivery_id = recipient.custom_args.get("delivery_id")
                match = _REFERENCE.search(body)
                session.add(OutboxMessage(
                    channel="email", to_enc=keys.encrypt(recipient.email, context=TO_CONTEXT),
                    to_index=_to_index(recipient.email), subject_enc=keys.encrypt(subject, context=SUBJECT_CONTEXT),
                    body_enc=keys.encrypt(body, context=BODY_CONTEXT), provider_message_id=x_message_id,
                    delivery_id=int(delivery_id) if delivery_id else None,
                    reference=match.group(0) if match else None, created_at=now))
                outcome = "bounce" if recipient.email.split("@")[0].endswith("+bounce") else "delivered"
                for name in ("processed", outcome):
                    events.append({
                        **recipient.custom_args, "email": recipient.email, "timestamp": int(time.time()),
                        "event": name, "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
                        "sg_message_id": f"{x_message_id}.outbox-{index}",
                        **({"type": "bounce", "reason": "550 simulated bounce"} if name == "bounce" else {}),
                    })
        if self.on_events is not None:
            self.on_events("sendgrid", events)
        return EmailBatchResult(provider_message_id=x_message_id)


class OutboxSmsSender:
    def __init__(self, factory: SessionFactory, on_events: EventsHook | None = None) -> None:
        self.factory = factory
        self.on_events = on_events

    def send(self, message: SmsMessage) -> SmsResult:
        keys = pii.keyring()
        sid = "SM" + uuid.uuid4().hex
        query = parse_qs(urlsplit(message.status_callback or "").query)
        delivery_id = (query.get("d") or [None])[0]
        match = _REFERENCE.search(message.body)
        with session_scope(self.factory) as session:
            session.add(OutboxMessage(
                channel="sms", to_enc=keys.encrypt(message.to, context=TO_CONTEXT), to_index=_to_index(message.to),
                body_enc=keys.encrypt(message.body, context=BODY_CONTEXT), provider_message_id=sid,
                delivery_id=int(delivery_id) if delivery_id else None, reference=match.group(0) if match else None,
                created_at=utcnow()))
        if self.on_events is not None and message.status_callback:
            for status in ("sent", "delivered"):
                self.on_events("twilio", ({"MessageSid": sid, "MessageStatus": status, "To": message.to},
                                          int(delivery_id) if delivery_id else None))
        return SmsResult(provider_message_id=sid, status="queued")


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    channel: str
    to: str
    subject: str
    body: str
    reference: str | None
    created_at: datetime


def latest(session: Session, *, to: str | None = None, last: int = 20) -> Sequence[OutboxEntry]:
    """Messages the outbox holds, newest first (optionally only those to one address or number)."""
    keys = pii.keyring()
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(last)
    if to:
        stmt = stmt.where(OutboxMessage.to_index == _to_index(to))
    entries = []
    for m in session.execute(stmt).scalars():
        entries.append(OutboxEntry(
            m.id, m.channel, keys.decrypt(m.to_enc, context=TO_CONTEXT),
            keys.decrypt(m.subject_enc, context=SUBJECT_CONTEXT) if m.subject_enc else "",
            keys.decrypt(m.body_enc, context=BODY_CONTEXT), m.reference, m.created_at))
    return entries
