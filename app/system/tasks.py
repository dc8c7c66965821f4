"""Housekeeping jobs."""

from __future__ import annotations

import logging

import dramatiq

from app.worker import Queues, periodic

log = logging.getLogger(__name__)


@periodic(every_seconds=60)
@dramatiq.actor(actor_name="system.heartbeat", queue_name=Queues.PERIODIC, max_retries=0)
def heartbeat() -> None:
    """Shows in the logs that the scheduler and a worker are alive."""
    log.info("worker heartbeat")
