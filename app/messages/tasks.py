"""Actors for one-off messages: send one (codes and other messages on queues of their own, ahead of
campaign traffic), sweep the stuck."""

from __future__ import annotations

import logging
from functools import lru_cache

import dramatiq

from app.config import get_settings
from app.db import default_session_factory, session_scope
from app.messages import service
from app.providers import build
from app.providers.base import EmailSender, SmsSender
from app.worker import Queues, periodic

log = logging.getLogger(__name__)


# Senders of their own, without the outbox's simulated delivery events: those speak of campaign deliveries.
@lru_cache(maxsize=1)
def email_sender() -> EmailSender:
    return build.email_sender(get_settings(), default_session_factory())


@lru_cache(maxsize=1)
def sms_sender() -> SmsSender:
    return build.sms_sender(get_settings(), default_session_factory())


# Codes on a queue of their own (with the lookup jobs that send them), so a code is never behind confirmations
# queued before it (a Redis queue is first in, first out); and at a higher priority, so among the jobs a worker
# holds, a code is the next one taken.
@dramatiq.actor(actor_name=service.SEND_CODE_ACTOR, queue_name=Queues.TRANSACTIONAL, max_retries=0,
                time_limit=120_000, priority=-20)
def send_code(message_id: int) -> None:
    deliver(message_id)


@dramatiq.actor(actor_name=service.SEND_ACTOR, queue_name=Queues.MESSAGES, max_retries=0, time_limit=120_000,
                priority=0)
def send_transactional(message_id: int) -> None:
    deliver(message_id)


def deliver(message_id: int) -> None:
    """Send one message now (from any job on these queues); a retry comes back as a delayed job on its queue."""
    factory = default_session_factory()
    delay = service.send_one(factory, message_id, email_sender=email_sender(), sms_sender=sms_sender(),
                             limiter_for=lambda channel: build.pacing(get_settings(), channel))
    if delay is not None:
        with session_scope(factory) as session:
            kind = service.kind_of(session, message_id) or ""
        actor = send_code if service.send_actor(kind) == service.SEND_CODE_ACTOR else send_transactional
        actor.send_with_options(args=(message_id,), delay=int(delay * 1000))


@periodic(every_seconds=get_settings().TRANSACTIONAL_SWEEP_SECONDS)
@dramatiq.actor(actor_name=service.SWEEP_ACTOR, queue_name=Queues.PERIODIC, max_retries=0)
def sweep_transactional() -> None:
    with session_scope(default_session_factory()) as session:
        found = service.sweep(session)
    if found:
        log.info("re-queued %s transactional messages", found)
