"""The outbox provider of the embedded default: keeps each message (encrypted) and simulates delivery events.

It stands in for SendGrid and Twilio with no credentials configured, so an admin can see exactly what
members would receive. The events it simulates go through the same code the webhooks use.

A simulated receipt is queued by the provider message id alone and rebuilt from the stored (encrypted)
message when it runs, so no address or number ever sits in the queue or in a failed job's log line.
Queueing a receipt comes after the message is stored: if the queue is down the send still succeeds
(the message was "sent"), and the receipt is queued again with the next one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import SessionFactory, session_scope, utcnow
from app.kit.contacts import ContactError, normalise_phone
from app.members import pii
from app.providers.base import EmailBatch, EmailBatchResult, SmsMessage, SmsResult
from app.providers.models import OutboxMessage

TO_CONTEXT = b"outbox.to"
SUBJECT_CONTEXT = b"outbox.subject"
BODY_CONTEXT = b"outbox.body"
_REFERENCE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")

log = logging.getLogger(__name__)

# kind ("sendgrid" or "twilio"), then the provider message id whose receipts to simulate.
EventsHook = Callable[[str, str], None]
# Receipts that could not be queued are kept for the next send to queue; beyond this many, the oldest go
# (their deliveries stay "sent", as a real message whose carrier never reports back).
MAX_UNQUEUED_RECEIPTS = 10_000


class _Receipts:
    """Queues simulated receipts through the hook; never lets a queue failure fail the send."""

    def __init__(self, kind: str, hook: EventsHook | None) -> None:
        self.kind = kind
        self.hook = hook
        self._waiting: deque[str] = deque(maxlen=MAX_UNQUEUED_RECEIPTS)
        self._lock = threading.Lock()
        self._failing = False

    def queue(self, message_id: str) -> None:
        if self.hook is None:
            return
        with self._lock:
            self._waiting.append(message_id)
            waiting, self._waiting = self._waiting, deque(maxlen=MAX_UNQUEUED_RECEIPTS)
        while waiting:
            try:
                self.hook(self.kind, waiting[0])
            except Exception as exc:  # the message is stored and counts as sent; its receipt can wait
                if not self._failing:  # once per outage, not once per message
                    log.warning("cannot queue simulated %s receipts (%s): keeping them for a later send",
                                self.kind, type(exc).__name__)
                self._failing = True
                with self._lock:
                    waiting.extend(self._waiting)
                    self._waiting = waiting
                return
            waiting.popleft()
        if self._failing:
            self._failing = False
            log.warning("simulated %s receipts are queued again", self.kind)


def _substitute(text: str, substitutions: dict[str, str]) -> str:
    for key, value in substitutions.items():
        text = text.replace(key, value)
    return text


def _to_index(address: str) -> str:
    return pii.keyring().blind_index(address.strip().lower(), kind="outbox")


def _event_id(message_id: str, index: int, name: str) -> str:
    """The same simulated event always has the same id, so a receipt queued twice is applied once."""
    digest = hashlib.sha256(f"{message_id}:{index}:{name}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _bounces(address: str) -> bool:
    return address.split("@")[0].endswith("+bounce")


class OutboxEmailSender:
    def __init__(self, factory: SessionFactory, on_events: EventsHook | None = None) -> None:
        self.factory = factory
        self.receipts = _Receipts("sendgrid", on_events)

    def send_batch(self, batch: EmailBatch) -> EmailBatchResult:
        keys = pii.keyring()
        x_message_id = "outbox-" + uuid.uuid4().hex
        now = utcnow()
        with session_scope(self.factory) as session:
            for recipient in batch.recipients:
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
        self.receipts.queue(x_message_id)
        return EmailBatchResult(provider_message_id=x_message_id)


def simulated_sendgrid_events(session: Session, message_id: str) -> list[dict[str, Any]]:
    """The Event Webhook batch SendGrid would post for one outbox request, rebuilt from what was stored.

    The events hold the address, as SendGrid's do (a hard bounce suppresses it); they live only in this
    process, and the event log drops it.
    """
    keys = pii.keyring()
    events: list[dict[str, Any]] = []
    stmt = (select(OutboxMessage).where(OutboxMessage.provider_message_id == message_id)
            .order_by(OutboxMessage.id))
    for index, m in enumerate(session.execute(stmt).scalars()):
        address = keys.decrypt(m.to_enc, context=TO_CONTEXT)
        at = int(m.created_at.timestamp())
        for name in ("processed", "bounce" if _bounces(address) else "delivered"):
            events.append({
                **({"delivery_id": str(m.delivery_id)} if m.delivery_id else {}), "email": address,
                "timestamp": at, "event": name, "sg_event_id": _event_id(message_id, index, name),
                "sg_message_id": f"{message_id}.outbox-{index}",
                **({"type": "bounce", "reason": "550 simulated bounce"} if name == "bounce" else {}),
            })
    return events


class OutboxSmsSender:
    def __init__(self, factory: SessionFactory, on_events: EventsHook | None = None) -> None:
        self.factory = factory
        self.receipts = _Receipts("twilio", on_events)

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
        if message.status_callback:
            self.receipts.queue(sid)
        return SmsResult(provider_message_id=sid, status="queued")


def simulated_twilio_statuses(session: Session, sid: str) -> tuple[list[dict[str, str]], int | None]:
    """The status callbacks Twilio would post for one outbox SMS (without the number), and its delivery id."""
    m = session.execute(select(OutboxMessage).where(OutboxMessage.provider_message_id == sid)).scalars().first()
    if m is None:
        return [], None
    return [{"MessageSid": sid, "MessageStatus": status} for status in ("sent", "delivered")], m.delivery_id


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    channel: str
    to: str
    subject: str
    body: str
    reference: str | None
    created_at: datetime


def _typed_index(to: str) -> str:
    """The index of an address or number as someone typed it: a number in E.164 as texts are sent
    (07700 900023, +44 7700 900023), as imports normalise it."""
    if "@" not in to:
        try:
            to = normalise_phone(to)
        except ContactError:
            pass  # not a number at all: it simply matches nothing
    return _to_index(to)


def latest(session: Session, *, to: str | None = None, last: int = 20) -> Sequence[OutboxEntry]:
    """Messages the outbox holds, newest first (optionally only those to one address or number)."""
    keys = pii.keyring()
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(last)
    if to:
        stmt = stmt.where(OutboxMessage.to_index == _typed_index(to))
    entries = []
    for m in session.execute(stmt).scalars():
        entries.append(OutboxEntry(
            m.id, m.channel, keys.decrypt(m.to_enc, context=TO_CONTEXT),
            keys.decrypt(m.subject_enc, context=SUBJECT_CONTEXT) if m.subject_enc else "",
            keys.decrypt(m.body_enc, context=BODY_CONTEXT), m.reference, m.created_at))
    return entries
