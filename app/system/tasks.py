"""Housekeeping jobs."""

from __future__ import annotations

import logging

import dramatiq

from app.db import default_session_factory, session_scope
from app.web import sessions as web_sessions
from app.worker import Queues, periodic

log = logging.getLogger(__name__)


@periodic(every_seconds=60)
@dramatiq.actor(actor_name="system.heartbeat", queue_name=Queues.PERIODIC, max_retries=0)
def heartbeat() -> None:
    """Shows in the logs that the scheduler and a worker are alive."""
    log.info("worker heartbeat")


@periodic(every_seconds=3600)
@dramatiq.actor(actor_name="system.prune_web_sessions", queue_name=Queues.PERIODIC, max_retries=0)
def prune_web_sessions() -> None:
    """Removes web sessions a week after they ended or expired, so the table holds what is live."""
    with session_scope(default_session_factory()) as session:
        removed = web_sessions.prune_sessions(session)
    log.info("web sessions pruned", extra={"removed": removed})
