"""One-off messages (one-time codes, confirmations): persisted first, queued by id, sent ahead of campaigns.

The row is the truth: it holds the contact and the content encrypted, the queue message only its id. A
worker leases the row, calls the provider outside any transaction and records the answer; retries are
bounded; the sweeper re-queues rows the queue lost or a killed worker left leased. The content is cleared
once sent, so a code is not kept readable after it has gone.

Every message ends with a reference in the notices' format, which /verify-message confirms, so the
site's advice ("a message without a reference is not from us") holds for these messages too. One-time
codes have a queue of their own: a member waiting for a code never waits behind queued confirmations.
"""

from __future__ import annotations

import html
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import SessionFactory, session_scope, utcnow
from app.i18n import translations
from app.kit.ratelimit import Limiter
from app.kit.references import new_reference
from app.members import pii
from app.messages.models import MessageStatus, TransactionalMessage
from app.messages.repository import TransactionalRepository
from app.providers.base import (
    EmailBatch,
    EmailRecipient,
    EmailSender,
    PermanentProviderError,
    RetryableProviderError,
    SmsMessage,
    SmsSender,
)
from app.worker import enqueue

log = logging.getLogger(__name__)

# The actors kept the names they had when one-off messages lived in notices/: a job waiting in Redis names its
# actor, so a rename would strand the messages queued when a worker is upgraded.
SEND_ACTOR = "notices.send_transactional"
# One-time codes: someone is on the code page; their own queue, ahead of any other message.
SEND_CODE_ACTOR = "notices.send_code"
SWEEP_ACTOR = "notices.sweep_transactional"
CODE_KINDS = frozenset({"check_code"})
TO_CONTEXT = b"transactional.to"
SUBJECT_CONTEXT = b"transactional.subject"
BODY_CONTEXT = b"transactional.body"
LEASE = timedelta(seconds=60)
# A queued message its own job has not picked up within this long is taken to be lost by the queue.
LOST_AFTER = timedelta(seconds=20)


def send_actor(kind: str) -> str:
    """The actor (and so the queue) that sends a message of this kind."""
    return SEND_CODE_ACTOR if kind in CODE_KINDS else SEND_ACTOR


def with_reference(*, channel: str, body: str, reference: str, language: str) -> str:
    """The body with the reference a person can check on /verify-message, in the message's language."""
    _ = translations(language).gettext
    if channel == "sms":
        # "Ref"/"Cyf" as on the notices' texts; /verify-message reads the reference with or without it.
        return body.rstrip() + " " + _("Ref {reference}").format(reference=reference)
    url = get_settings().PUBLIC_BASE_URL.rstrip("/") + "/verify-message"
    return body.rstrip() + "\n\n" + _(
        "Message reference: {reference}. To check this message is from us, type {url} into your browser yourself "
        "and enter this reference.").format(reference=reference, url=url)


def queue_message(session: Session, *, kind: str, channel: str, to: str, body: str, subject: str = "",
                  expires_at: datetime | None = None, enqueue_send: bool = True,
                  language: str = "en") -> TransactionalMessage:
    """Persist one message, with its reference added, and queue its id; it reaches the broker when the caller's
    transaction commits.

    A worker that will send the message itself right after its commit passes `enqueue_send=False`; if it
    dies first, the sweeper queues the message. `language` is the message's: its reference line is in it.
    """
    keys = pii.keyring()
    reference = new_reference()
    body = with_reference(channel=channel, body=body, reference=reference, language=language)
    message = TransactionalRepository(session).add(TransactionalMessage(
        kind=kind, channel=channel, reference=reference, language=language,
        to_enc=keys.encrypt(to, context=TO_CONTEXT),
        subject_enc=keys.encrypt(subject, context=SUBJECT_CONTEXT) if subject else None,
        body_enc=keys.encrypt(body, context=BODY_CONTEXT), status=MessageStatus.QUEUED, attempts=0,
        next_attempt_at=utcnow(), expires_at=expires_at), flush=True)
    if enqueue_send:
        enqueue(session, send_actor(kind), message_id=message.id)
    return message


@dataclass(frozen=True)
class SentMessage:
    sent_at: datetime
    channel: str


def sent_message(session: Session, *, reference: str) -> SentMessage | None:
    """When and by which channel the message with this reference (canonical) went, if one did."""
    message = TransactionalRepository(session).by_reference(reference)
    if message is None or message.sent_at is None:
        return None
    return SentMessage(sent_at=message.sent_at, channel=message.channel)


@dataclass(frozen=True)
class Leased:
    id: int
    channel: str
    language: str
    to: str
    subject: str
    body: str
    attempts: int


def _lease(session: Session, message_id: int) -> Leased | None:
    now = utcnow()
    repo = TransactionalRepository(session)
    message = repo.lease(message_id, now, now + LEASE)
    if message is None:
        return None
    if message.expires_at is not None and message.expires_at <= now:
        message.status = MessageStatus.EXPIRED
        message.subject_enc = message.body_enc = None
        return None
    keys = pii.keyring()
    return Leased(message.id, message.channel, message.language, keys.decrypt(message.to_enc, context=TO_CONTEXT),
                  keys.decrypt(message.subject_enc, context=SUBJECT_CONTEXT) if message.subject_enc else "",
                  keys.decrypt(message.body_enc or "", context=BODY_CONTEXT) if message.body_enc else "",
                  message.attempts)


def _backoff(attempts: int, retry_after: float | None) -> float:
    # Short: whoever waits for a code is looking at the page.
    delay = min(30.0, 1.0 * 2 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


def send_one(factory: SessionFactory, message_id: int, *, email_sender: EmailSender, sms_sender: SmsSender,
             limiter_for: Callable[[str], Limiter]) -> float | None:
    """Lease, send and record one message; returns seconds until it should be tried again, or None."""
    settings = get_settings()
    with session_scope(factory) as session:
        leased = _lease(session, message_id)
    if leased is None:
        return None
    provider_id: str | None = None
    retry: RetryableProviderError | None = None
    failed: PermanentProviderError | None = None
    limiter = limiter_for(leased.channel)
    try:
        limiter.acquire()  # the same shared pacing as campaigns: one provider limit for all traffic
        if leased.channel == "email":
            result = email_sender.send_batch(EmailBatch(
                from_email=settings.NOTICE_FROM_EMAIL, from_name=settings.organisation_name(leased.language),
                subject=leased.subject,
                html="<p>" + html.escape(leased.body).replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>",
                text=leased.body, recipients=[EmailRecipient(leased.to)]))
            provider_id = result.provider_message_id
        else:
            provider_id = sms_sender.send(SmsMessage(to=leased.to, body=leased.body)).provider_message_id
    except RetryableProviderError as exc:
        if exc.retry_after:
            limiter.hold(exc.retry_after)
        retry = exc
    except PermanentProviderError as exc:
        failed = exc
    except Exception as exc:  # never strand the row until its lease runs out
        log.exception("transactional message %s failed unexpectedly", message_id)
        retry = RetryableProviderError(f"unexpected error: {exc!r}", code="error")
    with session_scope(factory) as session:
        return _record(session, message_id, leased.attempts, provider_id, retry, failed,
                       settings.TRANSACTIONAL_MAX_ATTEMPTS)


def _record(session: Session, message_id: int, attempts: int, provider_id: str | None,
            retry: RetryableProviderError | None, failed: PermanentProviderError | None,
            max_attempts: int) -> float | None:
    message = TransactionalRepository(session).get(message_id)
    if message is None or message.status != MessageStatus.SENDING:
        return None
    now = utcnow()
    message.lease_until = None
    if retry is None and failed is None:
        message.status = MessageStatus.SENT
        message.sent_at = now
        message.provider_message_id = provider_id
        message.subject_enc = message.body_enc = None
        return None
    error = failed or retry
    assert error is not None
    message.error_code, message.error = error.code, error.reason[:500]
    if failed is not None or attempts >= max_attempts:
        message.status = MessageStatus.FAILED
        message.subject_enc = message.body_enc = None
        return None
    delay = _backoff(attempts, retry.retry_after if retry else None)
    message.status = MessageStatus.QUEUED
    message.next_attempt_at = now + timedelta(seconds=delay)
    return delay


def sweep(session: Session) -> int:
    """Re-queue messages the queue lost or a killed worker left leased; returns how many."""
    now = utcnow()
    found = TransactionalRepository(session).stuck(now, now - LOST_AFTER)
    for message in found:
        if message.status == MessageStatus.SENDING:
            message.status = MessageStatus.QUEUED
            message.lease_until = None
            message.next_attempt_at = now
        enqueue(session, send_actor(message.kind), message_id=message.id)
    return len(found)


def kind_of(session: Session, message_id: int) -> str | None:
    """What kind of message this is (to send a retry through the right queue)."""
    message = TransactionalRepository(session).get(message_id)
    return None if message is None else message.kind


def status_of(session: Session, message_id: int) -> str | None:
    """Where one message has got to."""
    message = TransactionalRepository(session).get(message_id)
    return None if message is None else message.status
