"""Sending one chunk: lease in one short transaction, call the provider outside any, record in another.

A worker killed between the call and the record leaves the chunk leased; when the lease expires the
reconciler queues it again, so a crash can repeat one chunk but never lose one.

A database that cannot take the record does not cost what the provider accepted: the sender keeps the
results, writes them to `unrecorded` and retries with a bounded backoff; whoever leases next for the
campaign records what is there first, so an accepted message is not sent again (docs/decisions.md).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import metrics
from app.db import SessionFactory, session_scope, utcnow
from app.kit.ratelimit import Limiter
from app.notices import unrecorded
from app.notices.leasing import Leased, lease_chunk
from app.notices.models import Channel
from app.notices.recording import record_outcome
from app.notices.repository import DeliveryRepository
from app.notices.senders import Outcome, send_email_chunk, send_sms_chunk
from app.providers.base import EmailSender, SmsSender

log = logging.getLogger(__name__)


def send_chunk(factory: SessionFactory, campaign_id: int, channel: str, *, email_sender: EmailSender | None,
               sms_sender: SmsSender | None, limiter: Limiter) -> float | None:
    """Lease, send and record one chunk; returns seconds until this sender should run again, or None."""
    record_unrecorded(factory, campaign_id)
    leased = lease_chunk(factory, campaign_id, channel)
    if not isinstance(leased, Leased):
        return leased
    record = Recorder(factory, campaign_id, channel, {r.id: r for r in leased.rows})
    if channel == Channel.EMAIL:
        assert email_sender is not None
        send_email_chunk(leased, email_sender, limiter, record)
    else:
        assert sms_sender is not None
        send_sms_chunk(leased, sms_sender, limiter, record)
    if not record.finish():
        raise RecordingFailed(f"campaign {campaign_id}: the database did not take a {channel} chunk's results")
    return 0.0


# --- when the database cannot take a record -------------------------------------------------------
DATABASE_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
RECORD_RETRY_SECONDS = 90.0  # an outage of a minute is ridden out; beyond, `unrecorded` holds the results
RECORD_BACKOFF_MAX = 2.0  # so recording resumes within two seconds of the database coming back


class RecordingFailed(Exception):
    """The database stayed unreachable; the results are in `unrecorded` (or, with Redis down too, lost)."""


def record_unrecorded(factory: SessionFactory, campaign_id: int) -> int:
    """Record as sent what an earlier sender had accepted but could not record; before any lease."""
    waiting = unrecorded.waiting(campaign_id)
    if not waiting:
        return 0
    with session_scope(factory) as session:
        DeliveryRepository(session).mark_sent(sorted(waiting), waiting, utcnow())
    unrecorded.forget(campaign_id, waiting)
    log.warning("campaign %s: recorded %d results an earlier sender could not", campaign_id, len(waiting))
    return len(waiting)


class Recorder:
    """Records a chunk's results as they come; while the database is unreachable it keeps them (and puts
    what the provider accepted in `unrecorded`) and tries again with each new result and at the end."""

    def __init__(self, factory: SessionFactory, campaign_id: int, channel: str, rows: dict[int, Any]) -> None:
        self.factory, self.campaign_id, self.channel, self.rows = factory, campaign_id, channel, rows
        self.pending: list[tuple[Outcome, bool]] = []  # (results, written to `unrecorded`)
        self.down_since: float | None = None

    def __call__(self, outcome: Outcome) -> None:
        if outcome.sent or outcome.retry or outcome.failed:
            self.pending.append((outcome, False))
            self.flush()

    def flush(self) -> bool:
        """Record what is pending, oldest first; False (results kept) while the database is unreachable."""
        while self.pending:
            outcome, kept = self.pending[0]
            try:
                with session_scope(self.factory) as session:
                    record_outcome(session, self.campaign_id, self.rows, outcome)
            except DATABASE_DOWN as exc:
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    log.warning("campaign %s: cannot record %s results (%s); keeping them and retrying",
                                self.campaign_id, self.channel, type(exc).__name__)
                for i, (waiting, already) in enumerate(self.pending):
                    if not already:
                        unrecorded.keep(self.campaign_id, {d: waiting.provider_ids.get(d) for d in waiting.sent})
                        self.pending[i] = (waiting, True)
                return False
            self.pending.pop(0)
            if kept:
                unrecorded.forget(self.campaign_id, outcome.sent)
            metrics.observe_outcome(self.channel, outcome)
        if self.down_since is not None:
            log.warning("campaign %s: %s results recorded again after %.1f s", self.campaign_id, self.channel,
                        time.monotonic() - self.down_since)
            self.down_since = None
        return True

    def finish(self, *, within: float = RECORD_RETRY_SECONDS) -> bool:
        """Retry until everything is recorded, for at most `within` seconds; False if it never was."""
        deadline = time.monotonic() + within
        pause = 0.25
        while not self.flush():
            if time.monotonic() + pause > deadline:
                return False
            time.sleep(pause)
            pause = min(RECORD_BACKOFF_MAX, pause * 2)
        return True
