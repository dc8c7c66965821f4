"""Callback housekeeping jobs."""

from __future__ import annotations

import logging

import dramatiq

from app.callbacks import texts
from app.db import default_session_factory, session_scope
from app.worker import Queues, periodic

log = logging.getLogger(__name__)


@periodic(every_seconds=3600)
@dramatiq.actor(actor_name="callbacks.prune_texts", queue_name=Queues.PERIODIC, max_retries=0)
def prune_texts() -> None:
    """Removes the record of callback texts once no limit counts them, so the table stays small."""
    with session_scope(default_session_factory()) as session:
        removed = texts.prune(session)
    log.info("callback texts pruned", extra={"removed": removed})
