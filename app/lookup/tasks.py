"""Actors for "check your status": look an identifier up, and send a code again."""

from __future__ import annotations

import dramatiq

from app.config import get_settings
from app.db import default_session_factory, session_scope
from app.lookup import service
from app.messages.tasks import deliver
from app.worker import Queues, periodic


# On the transactional queue: the visitor is on the code page, waiting for what this sends.
@dramatiq.actor(actor_name=service.RESOLVE_ACTOR, queue_name=Queues.TRANSACTIONAL, max_retries=5, priority=-10)
def resolve_challenge(challenge_id: int) -> None:
    with session_scope(default_session_factory()) as session:
        message_id = service.resolve_challenge(session, challenge_id=challenge_id)
    if message_id is not None:
        deliver(message_id)  # in this job: the member is waiting, a second job would only add a queue trip


@dramatiq.actor(actor_name="lookup.resend_code", queue_name=Queues.TRANSACTIONAL, max_retries=5, priority=-10)
def resend_code(challenge_id: int) -> None:
    with session_scope(default_session_factory()) as session:
        message_id = service.send_again(session, challenge_id=challenge_id)
    if message_id is not None:
        deliver(message_id)


@periodic(every_seconds=get_settings().TRANSACTIONAL_SWEEP_SECONDS)
@dramatiq.actor(actor_name="lookup.sweep_pending", queue_name=Queues.PERIODIC, max_retries=0)
def sweep_pending() -> None:
    with session_scope(default_session_factory()) as session:
        service.sweep_pending(session)
