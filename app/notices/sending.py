"""Sending one chunk: lease in one short transaction, call the provider outside any, record in another.

A worker killed between the call and the record leaves the chunk leased; when the lease expires the
reconciler queues it again, so a crash can repeat one chunk but never lose one.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import SessionFactory, session_scope, utcnow
from app.incidents import service as incident_service
from app.kit.ratelimit import Limiter, wait_until
from app.members import service as member_service
from app.members.service import MemberContact
from app.notices import rendering
from app.notices.models import Campaign, CampaignStatus, Channel, NoticeTemplate
from app.notices.planning import PlanContext, add_sms_fallback, variant_categories
from app.notices.repository import CampaignRepository, DeliveryRepository
from app.notices.service import shared_values
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
class Leased:
    """A chunk a worker holds: the rows and what it needs to render them."""

    campaign_id: int
    channel: str
    rows: list[Any]
    contacts: dict[int, MemberContact]
    templates: dict[str, NoticeTemplate]  # language -> template
    shared: dict[str, rendering.SharedValues]  # language -> values
    categories: dict[str, rendering.Category]  # per code, in each language: code -> (name, guidance)
    categories_cy: dict[str, rendering.Category] = field(default_factory=dict)

    def categories_for(self, variant: str, language: str) -> list[rendering.Category]:
        table = self.categories_cy if language == "cy" else self.categories
        return [table[c] for c in variant_categories(variant) if c in table]

    def values(self, row: Any) -> dict[str, str]:
        contact = self.contacts[row.member_id]
        return {"first_name": contact.first_name, "last_name": contact.last_name, "branch": contact.branch_name,
                "reference": row.reference}


@dataclass
class Outcome:
    sent: list[int] = field(default_factory=list)
    provider_ids: dict[int, str | None] = field(default_factory=dict)
    retry: list[tuple[list[int], RetryableProviderError]] = field(default_factory=list)
    failed: list[tuple[list[int], str | None, str]] = field(default_factory=list)


def backoff(attempts: int, retry_after: float | None) -> float:
    settings = get_settings()
    delay = min(settings.RETRY_MAX_SECONDS, settings.RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


def _category_tables(session: Session) -> tuple[dict[str, rendering.Category], dict[str, rendering.Category]]:
    en, cy = {}, {}
    for c in incident_service.categories_by_code(session).values():
        en[c.code] = rendering.Category(c.code, c.name, c.guidance)
        cy[c.code] = rendering.Category(c.code, c.name_cy or c.name, c.guidance_cy or c.guidance)
    return en, cy


@dataclass(frozen=True)
class _Static:
    """What every chunk of a campaign renders with; templates cannot change once a campaign is approved."""

    templates: dict[str, dict[str, NoticeTemplate]]  # channel -> language -> template
    shared: dict[str, rendering.SharedValues]
    categories: tuple[dict[str, rendering.Category], dict[str, rendering.Category]]
    loaded_at: float


_static: dict[tuple[Any, ...], _Static] = {}
_STATIC_SECONDS = 60.0  # incident titles and category guidance may be edited; pick that up within a minute


def _campaign_static(session: Session, campaign: Campaign) -> _Static:
    now = time.monotonic()
    key = (campaign.id, campaign.created_at, campaign.approved_at)
    cached = _static.get(key)
    if cached is not None and now - cached.loaded_at < _STATIC_SECONDS:
        return cached
    templates: dict[str, dict[str, NoticeTemplate]] = {}
    for t in CampaignRepository(session).templates(campaign.id):
        session.expunge(t)
        templates.setdefault(t.channel, {})[t.language] = t
    static = _Static(templates, {lang: shared_values(session, campaign, lang) for lang in ("en", "cy")},
                     _category_tables(session), now)
    _static[key] = static
    return static


MIN_SMS_CHUNK = 10


def _sms_share() -> float:
    """Messages per second one SMS sender may send: its part of the provider's limit."""
    settings = get_settings()
    return settings.TWILIO_MESSAGES_PER_SECOND / max(1, settings.SMS_SENDERS)


def chunk_size(channel: str) -> int:
    """Deliveries a sender leases at once.

    An SMS chunk is sent one paced message at a time, so its size follows the pacing limit: about
    SEND_CHUNK_SECONDS of one sender's share. A pause then waits a couple of seconds of sending at any
    rate, while an unpaced run amortises each lease over many messages.
    """
    settings = get_settings()
    if channel == Channel.EMAIL:
        return settings.EMAIL_CHUNK
    return max(MIN_SMS_CHUNK, min(settings.SMS_CHUNK, round(_sms_share() * settings.SEND_CHUNK_SECONDS)))


def tapered(size: int, due: int, senders: int) -> int:
    """A smaller SMS chunk when little is left, so the last rows are shared by every sender.

    With full chunks the last few senders finish their chunks alone while the rest have stopped;
    sharing out what is left keeps all of them busy to the end. `due` is counted up to a cap, so this
    costs one short index scan a lease.
    """
    if due >= size * senders:
        return size
    return max(MIN_SMS_CHUNK, min(size, -(-due // senders)))


HEARTBEAT_EVERY = timedelta(seconds=1)


def lease_chunk(factory: SessionFactory, campaign_id: int, channel: str) -> Leased | float | None:
    """Lease the next chunk; or say when to look again (seconds), or None when this sender can stop."""
    settings = get_settings()
    with session_scope(factory) as session:
        repo = CampaignRepository(session)
        deliveries = DeliveryRepository(session)
        campaign = repo.get(campaign_id)
        if campaign is None or campaign.status != CampaignStatus.SENDING or repo.sending_stopped():
            return None
        now = utcnow()
        # The campaign row before the delivery rows: the same lock order as pause and cancel. Only when
        # the heartbeat looks stale: an UPDATE that finds the row locked waits for the other sender's
        # lease to commit, even when its WHERE then turns out false.
        if campaign.heartbeat_at is None or campaign.heartbeat_at < now - HEARTBEAT_EVERY:
            repo.touch(campaign_id, now, HEARTBEAT_EVERY)
        size = chunk_size(channel)
        if channel == Channel.SMS:
            size = tapered(size, deliveries.due_at_most(campaign_id, channel, now, size * settings.SMS_SENDERS),
                           settings.SMS_SENDERS)
        rows = deliveries.lease(campaign_id, channel, size, now, now + timedelta(seconds=settings.SEND_LEASE_SECONDS))
        if not rows:
            due, pending, next_at = deliveries.work_left(campaign_id, channel, now)
            if due:
                return 0.2  # other senders hold the due rows for the moment
            if pending == 0:
                if campaign.planned_at is not None:
                    complete_if_done(session, campaign)
                    return None
                return 1.0  # planning is still adding rows
            wait = (next_at - now).total_seconds() if next_at else settings.STALL_SECONDS
            return min(max(wait, 0.2), settings.STALL_SECONDS)
        contacts = member_service.contacts(session, [r.member_id for r in rows], open_email=channel == Channel.EMAIL,
                                           open_phone=channel == Channel.SMS)
        static = _campaign_static(session, campaign)
        en, cy = static.categories
        return Leased(campaign_id, channel, rows, contacts, static.templates.get(channel, {}), static.shared, en, cy)


def complete_if_done(session: Session, campaign: Campaign) -> bool:
    """A fully planned campaign with nothing queued or leased is complete."""
    if campaign.status != CampaignStatus.SENDING or campaign.planned_at is None:
        return False
    if DeliveryRepository(session).pending_channels(campaign.id):
        return False
    locked = CampaignRepository(session).lock(campaign.id)
    if locked is None or locked.status != CampaignStatus.SENDING:
        return False
    locked.status = CampaignStatus.COMPLETED
    locked.completed_at = utcnow()
    log.info("campaign %s completed", campaign.id)
    return True


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
                                            from_name=settings.ORGANISATION_NAME, subject=content.subject,
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
            outcome.provider_ids.update({i: result.provider_message_id for i in ids})
        record(outcome)  # each request is recorded as soon as it returns
        _merge(total, outcome)
    return total


# --- sms ------------------------------------------------------------------------------------------
SMS_SLOTS_PER_RESERVATION = 10


def sms_reservation_size() -> int:
    """Pacing slots an SMS sender reserves per round trip to Redis: ten, or a quarter second of its share."""
    return max(SMS_SLOTS_PER_RESERVATION, round(_sms_share() / 4))


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


# --- recording ------------------------------------------------------------------------------------
def record_outcome(session: Session, campaign_id: int, rows: dict[int, Any], outcome: Outcome) -> None:
    """Write what the provider said; permanent email failures get the SMS version where possible."""
    settings = get_settings()
    repo = DeliveryRepository(session)
    now = utcnow()
    repo.mark_sent(outcome.sent, outcome.provider_ids, now)
    failed_email: list[int] = []
    for ids, exc in outcome.retry:
        attempts = max(rows[i].attempts for i in ids)
        if attempts >= settings.SEND_MAX_ATTEMPTS:
            changed = repo.mark_failed(ids, exc.code, f"gave up after {attempts} attempts: {exc.reason}", now)
            failed_email.extend(i for i in changed if rows[i].channel == Channel.EMAIL)
        else:
            repo.mark_retry(ids, now + timedelta(seconds=backoff(attempts, exc.retry_after)), exc.code, exc.reason,
                            now)
    for ids, code, reason in outcome.failed:
        changed = repo.mark_failed(ids, code, reason, now)
        failed_email.extend(i for i in changed if rows[i].channel == Channel.EMAIL)
    if failed_email:
        campaign = CampaignRepository(session).get(campaign_id)
        if campaign is not None:
            add_sms_fallback(session, PlanContext.load(session, campaign), failed_email)


def send_chunk(factory: SessionFactory, campaign_id: int, channel: str, *, email_sender: EmailSender | None,
               sms_sender: SmsSender | None, limiter: Limiter) -> float | None:
    """Lease, send and record one chunk; returns seconds until this sender should run again, or None."""
    leased = lease_chunk(factory, campaign_id, channel)
    if not isinstance(leased, Leased):
        return leased
    rows = {r.id: r for r in leased.rows}

    def record(outcome: Outcome) -> None:
        if outcome.sent or outcome.retry or outcome.failed:
            with session_scope(factory) as session:
                record_outcome(session, campaign_id, rows, outcome)

    if channel == Channel.EMAIL:
        assert email_sender is not None
        send_email_chunk(leased, email_sender, limiter, record)
    else:
        assert sms_sender is not None
        send_sms_chunk(leased, sms_sender, limiter, record)
    return 0.0


# --- the reconciler --------------------------------------------------------------------------------
@dataclass
class Reconciled:
    leases_requeued: int = 0
    leases_failed: int = 0
    started: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    nudged: list[int] = field(default_factory=list)


def reconcile(session: Session) -> Reconciled:
    """Return expired leases, start due schedules, restart senders the queue lost, complete finished campaigns."""
    result = reconcile_leases(session)
    reconcile_campaigns(session, result)
    return result


def reconcile_leases(session: Session) -> Reconciled:
    """Expired leases go back to the queue (or fail, out of attempts, and fall back to SMS)."""
    settings = get_settings()
    result = Reconciled()
    deliveries = DeliveryRepository(session)
    campaigns = CampaignRepository(session)
    now = utcnow()
    result.leases_requeued, failed = deliveries.expire_leases(now, settings.SEND_MAX_ATTEMPTS)
    result.leases_failed = len(failed)
    if failed:
        for campaign_id, ids in _by_campaign(deliveries, failed).items():
            campaign = campaigns.get(campaign_id)
            if campaign is not None:
                add_sms_fallback(session, PlanContext.load(session, campaign), ids)
    return result


def reconcile_campaigns(session: Session, result: Reconciled) -> None:
    """Start due schedules, restart planning and senders the queue lost, complete finished campaigns."""
    from app.notices import tasks

    settings = get_settings()
    deliveries = DeliveryRepository(session)
    campaigns = CampaignRepository(session)
    now = utcnow()
    for campaign in campaigns.with_status(CampaignStatus.SCHEDULED):
        if campaign.scheduled_at is not None and campaign.scheduled_at <= now:
            campaign.status = CampaignStatus.SENDING
            campaign.started_at = now
            tasks.enqueue_planning(session, campaign.id)
            result.started.append(campaign.id)
    stopped = campaigns.sending_stopped()
    for campaign in campaigns.with_status(CampaignStatus.SENDING):
        if campaign.id in result.started:
            continue
        if campaign.planned_at is None:
            # In the embedded default a command's planning job never reaches this process: start it now.
            last = campaign.heartbeat_at or (None if settings.embedded else campaign.started_at)
            stale = last is None or (now - last).total_seconds() > settings.STALL_SECONDS
            if stale and not stopped:
                tasks.enqueue_planning(session, campaign.id)
                result.nudged.append(campaign.id)
            continue
        channels = deliveries.pending_channels(campaign.id)
        if not channels:
            if complete_if_done(session, campaign):
                result.completed.append(campaign.id)
        elif not stopped:
            # Senders whose chain is still alive hold their slot, so these extra jobs give way at once.
            tasks.enqueue_senders(session, campaign.id, [Channel(c) for c in channels])
            result.nudged.append(campaign.id)


def _by_campaign(deliveries: DeliveryRepository, ids: Sequence[int]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = {}
    for d in deliveries.by_ids(ids).values():
        if d.channel == Channel.EMAIL:
            grouped.setdefault(d.campaign_id, []).append(d.id)
    return grouped
