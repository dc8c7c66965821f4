"""Senders: one leased chunk goes to the provider, outside any transaction; results go to `record` as they come."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.config import get_settings
from app.kit.ratelimit import Limiter, wait_until
from app.notices import rendering
from app.notices.leasing import Leased, sms_share
from app.providers.base import (
    EmailBatch,
    EmailRecipient,
    EmailSender,
    PermanentProviderError,
    RetryableProviderError,
    SmsMessage,
    SmsSender,
)

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    sent: list[int] = field(default_factory=list)
    provider_ids: dict[int, str | None] = field(default_factory=dict)
    retry: list[tuple[list[int], RetryableProviderError]] = field(default_factory=list)
    failed: list[tuple[list[int], str | None, str]] = field(default_factory=list)


# --- email ----------------------------------------------------------------------------------------
def email_batches(chunk: Leased, outcome: Outcome) -> list[tuple[list[int], EmailBatch]]:
    """Group the chunk by variant; each group becomes requests of up to 1,000 distinct addresses."""
    settings = get_settings()
    groups: dict[str, list[Any]] = {}
    for row in chunk.rows:
        contact = chunk.contacts.get(row.member_id)
        if contact is None or not contact.email:
            outcome.failed.append(([row.id], "no_contact", "no email address on file"))
            continue
        groups.setdefault(row.variant, []).append(row)
    batches = []
    for variant, rows in groups.items():
        language = rows[0].language
        template = chunk.templates.get(language) or chunk.templates["en"]
        content = rendering.render_email_variant(template.subject, template.html, template.text,
                                                 chunk.shared[template.language],
                                                 chunk.categories_for(variant, template.language))
        # SendGrid refuses a request in which an address repeats, so a shared address waits a batch.
        pending: list[tuple[list[int], list[EmailRecipient], set[str]]] = []
        for row in rows:
            contact = chunk.contacts[row.member_id]
            address = contact.email or ""
            recipient = EmailRecipient(address, rendering.email_substitutions(chunk.values(row)),
                                       {"delivery_id": str(row.id)})
            for ids, recipients, seen in pending:
                if address not in seen and len(recipients) < 1000:
                    ids.append(row.id)
                    recipients.append(recipient)
                    seen.add(address)
                    break
            else:
                pending.append(([row.id], [recipient], {address}))
        for ids, recipients, _ in pending:
            batches.append((ids, EmailBatch(from_email=settings.NOTICE_FROM_EMAIL,
                                            from_name=chunk.shared[template.language].organisation,
                                            subject=content.subject,
                                            html=content.html, text=content.text, recipients=recipients)))
    return batches


def send_email_chunk(chunk: Leased, sender: EmailSender, limiter: Limiter,
                     record: Callable[[Outcome], None]) -> Outcome:
    total = Outcome()
    first = Outcome()
    batches = email_batches(chunk, first)
    record(first)
    _merge(total, first)
    for ids, batch in batches:
        outcome = Outcome()
        try:
            limiter.acquire()
            result = sender.send_batch(batch)
        except RetryableProviderError as exc:
            if exc.retry_after:
                limiter.hold(exc.retry_after)
            outcome.retry.append((ids, exc))
        except PermanentProviderError as exc:
            outcome.failed.append((ids, exc.code, exc.reason))
        except Exception as exc:  # an unexpected error must not strand the chunk until its lease expires
            log.exception("email batch failed unexpectedly")
            outcome.retry.append((ids, RetryableProviderError(f"unexpected error: {exc!r}", code="error")))
        else:
            outcome.sent.extend(ids)
            outcome.provider_ids.update(dict.fromkeys(ids, result.provider_message_id))
        record(outcome)  # each request is recorded as soon as it returns
        _merge(total, outcome)
    return total


# --- sms ------------------------------------------------------------------------------------------
SMS_SLOTS_PER_RESERVATION = 10


def sms_reservation_size() -> int:
    """Pacing slots an SMS sender reserves per round trip to Redis: ten, or a quarter second of its share."""
    return max(SMS_SLOTS_PER_RESERVATION, round(sms_share() / 4))


def status_callback_url(delivery_id: int) -> str:
    return get_settings().PUBLIC_BASE_URL.rstrip("/") + f"/webhooks/twilio/status?d={delivery_id}"


# Results are recorded at least this often within a chunk: a killed worker then repeats no more than this
# much, and the evidence's sent times are this close to the truth. Each record is a transaction, so an
# unpaced sender records about once a second rather than every few dozen messages.
SMS_RECORD_EVERY = 200
SMS_RECORD_SECONDS = 1.0


def send_sms_chunk(chunk: Leased, sender: SmsSender, limiter: Limiter,
                   record: Callable[[Outcome], None]) -> Outcome:
    total = Outcome()
    outcome = Outcome()
    recorded_at = time.monotonic()
    deadlines: deque[float] = deque()
    per_reservation = sms_reservation_size()
    renderers: dict[tuple[str, str], Callable[[dict[str, str]], str]] = {}  # per variant and language
    try:
        for position, row in enumerate(chunk.rows):
            contact = chunk.contacts.get(row.member_id)
            if contact is None or not contact.phone:
                outcome.failed.append(([row.id], "no_contact", "no phone number on file"))
                continue
            try:
                renderer = renderers.get((row.variant, row.language))
                if renderer is None:
                    template = chunk.templates.get(row.language) or chunk.templates["en"]
                    renderer = renderers[(row.variant, row.language)] = rendering.sms_renderer(
                        template.text, chunk.shared[template.language],
                        chunk.categories_for(row.variant, template.language))
                body = renderer(chunk.values(row))
                if not deadlines:  # slots are reserved a few at a time: one round trip to Redis per batch
                    left = len(chunk.rows) - position
                    deadlines = deque(limiter.reserve(min(per_reservation, left)))
                wait_until(deadlines.popleft())
                result = sender.send(SmsMessage(to=contact.phone, body=body,
                                                status_callback=status_callback_url(row.id)))
            except RetryableProviderError as exc:
                if exc.retry_after:
                    limiter.hold(exc.retry_after)
                    deadlines.clear()  # slots reserved before the hold would send too early
                outcome.retry.append(([row.id], exc))
            except PermanentProviderError as exc:
                outcome.failed.append(([row.id], exc.code, exc.reason))
            except Exception as exc:  # e.g. Redis gone: what was sent so far is still recorded below
                log.exception("SMS failed unexpectedly")
                outcome.retry.append(([row.id], RetryableProviderError(f"unexpected error: {exc!r}", code="error")))
            else:
                outcome.sent.append(row.id)
                outcome.provider_ids[row.id] = result.provider_message_id
            if (len(outcome.sent) + len(outcome.retry) >= SMS_RECORD_EVERY
                    or time.monotonic() - recorded_at >= SMS_RECORD_SECONDS):
                record(outcome)
                _merge(total, outcome)
                outcome, recorded_at = Outcome(), time.monotonic()
    finally:
        record(outcome)
        _merge(total, outcome)
    return total


def _merge(into: Outcome, part: Outcome) -> None:
    into.sent.extend(part.sent)
    into.provider_ids.update(part.provider_ids)
    into.retry.extend(part.retry)
    into.failed.extend(part.failed)
