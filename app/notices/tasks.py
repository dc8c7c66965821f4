"""Notice actors: plan a campaign, run its senders, reconcile, and replay outbox events.

Services never import this module: they queue work by actor name (app/notices/jobs.py), and the
entry points load the actors (app/tasks.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from functools import lru_cache
from typing import Any

import dramatiq
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from app.config import get_settings
from app.db import default_session_factory, session_scope
from app.notices import events, jobs, planning, reconciling, sending
from app.notices.models import Channel
from app.providers import build, outbox
from app.providers.base import EmailSender, SmsSender
from app.worker import Queues, periodic, slots

log = logging.getLogger(__name__)


# --- providers, built once per process ------------------------------------------------------------
def _outbox_events(kind: str, message_id: str) -> None:
    # Only the provider message id is queued: the receipt is rebuilt from the stored message when it runs.
    delay = int(get_settings().OUTBOX_EVENT_DELAY_SECONDS * 1000)
    actor = simulate_sendgrid_events if kind == "sendgrid" else simulate_twilio_status
    actor.send_with_options(args=(message_id,), delay=delay)


@lru_cache(maxsize=1)
def email_sender() -> EmailSender:
    return build.email_sender(get_settings(), default_session_factory(), _outbox_events)


@lru_cache(maxsize=1)
def sms_sender() -> SmsSender:
    return build.sms_sender(get_settings(), default_session_factory(), _outbox_events)


def warm_up() -> None:
    """Build the database engine, open its first connection and build both senders before the first
    job, so the first chunk a worker takes does not also pay for them (the driver and the Twilio SDK
    import modules on first use)."""
    try:
        with default_session_factory()() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:  # the database may come up after the worker: jobs retry until it does
        log.error("cannot reach the database yet: %s", exc)
    for make in (email_sender, sms_sender):
        try:
            sender = make()
        except ValueError as exc:  # a provider half configured: every send will say so too
            log.error("cannot build a sender: %s", exc)
            continue
        prepare = getattr(sender, "warm_up", None)
        if prepare is not None:
            prepare()


# --- actors --------------------------------------------------------------------------------------
@dramatiq.actor(actor_name=jobs.PLAN, queue_name=Queues.PLANNING, max_retries=5, time_limit=3_600_000)
def plan_campaign(campaign_id: int) -> None:
    planning.plan_campaign(default_session_factory(), campaign_id)


DATABASE_DOWN_RETRY_SECONDS = 2.0


def run_sender(actor: Any, campaign_id: int, channel: str, slot: int, token: str) -> None:
    """One sender: holds its slot, sends chunks while there is work, then hands on to its successor."""
    settings = get_settings()
    key = f"{campaign_id}:{channel}:{slot}"
    ttl = settings.SEND_LEASE_SECONDS + settings.STALL_SECONDS
    if not slots.claim(key, token, ttl):
        return  # another live sender holds this slot
    factory = default_session_factory()
    # One job holds a worker thread for at most ~10 s, then hands on, so other queues get their turn.
    deadline = time.monotonic() + 10
    delay: float | None = 0.0
    while time.monotonic() < deadline:
        try:
            delay = sending.send_chunk(
                factory, campaign_id, channel,
                email_sender=email_sender() if channel == Channel.EMAIL else None,
                sms_sender=sms_sender() if channel == Channel.SMS else None,
                limiter=build.pacing(settings, channel))
        except (*sending.DATABASE_DOWN, sending.RecordingFailed) as exc:
            # Not Dramatiq's retry, whose backoff would hold the slot for minutes: the chain looks again
            # shortly, so sending resumes within seconds of the database coming back.
            log.warning("sender %s: the database is unavailable (%s); looking again in %.0f s", key,
                        type(exc).__name__, DATABASE_DOWN_RETRY_SECONDS)
            delay = DATABASE_DOWN_RETRY_SECONDS
            break
        except BaseException:
            with contextlib.suppress(Exception):  # Redis may be what failed
                slots.release(key, token)  # a job waiting in Dramatiq's retry backoff must not hold the slot
            raise
        if delay != 0.0:
            break
        slots.claim(key, token, ttl)
    if delay is None:
        slots.release(key, token)
        return
    slots.claim(key, token, ttl + delay)
    # Dramatiq routes any delay, even 0, through the delay queue: a hand-on with work waiting goes
    # straight to the sender queue instead, where the next sender is picked up within 250 ms.
    actor.send_with_options(kwargs={"campaign_id": campaign_id, "channel": channel, "slot": slot, "token": token},
                            delay=int(delay * 1000) or None)


# Each channel has its own queue, so a worker's prefetch limit spreads senders across processes.
@dramatiq.actor(actor_name=jobs.SEND_EMAIL, queue_name=Queues.EMAIL, max_retries=3, time_limit=1_800_000)
def send_email(campaign_id: int, channel: str, slot: int, token: str) -> None:
    run_sender(send_email, campaign_id, channel, slot, token)


@dramatiq.actor(actor_name=jobs.SEND_SMS, queue_name=Queues.SMS, max_retries=3, time_limit=1_800_000)
def send_sms(campaign_id: int, channel: str, slot: int, token: str) -> None:
    run_sender(send_sms, campaign_id, channel, slot, token)


@periodic(every_seconds=get_settings().RECONCILE_SECONDS)
@dramatiq.actor(actor_name=jobs.RECONCILE, queue_name=Queues.PERIODIC, max_retries=0)
def reconcile() -> None:
    # Two transactions, so lease rows are never held while campaign rows are locked (and vice versa).
    with session_scope(default_session_factory()) as session:
        result = reconciling.reconcile_leases(session)
    metrics.observe_leases_expired(requeued=result.leases_requeued, failed=result.leases_failed)
    with session_scope(default_session_factory()) as session:
        reconciling.reconcile_campaigns(session, result)
    if result.leases_requeued or result.leases_failed or result.started or result.completed:
        log.info("reconciled: %s", result)


@dramatiq.actor(actor_name=jobs.SIMULATE_SENDGRID_EVENTS, queue_name=Queues.EVENTS, max_retries=5)
def simulate_sendgrid_events(message_id: str) -> None:
    with session_scope(default_session_factory()) as session:
        events.apply_sendgrid_events(session, outbox.simulated_sendgrid_events(session, message_id))


@dramatiq.actor(actor_name=jobs.SIMULATE_TWILIO_STATUS, queue_name=Queues.EVENTS, max_retries=5)
def simulate_twilio_status(sid: str) -> None:
    with session_scope(default_session_factory()) as session:
        statuses, delivery_id = outbox.simulated_twilio_statuses(session, sid)
        for params in statuses:
            events.apply_twilio_status(session, params, delivery_id)
