"""Sending one chunk: lease in one short transaction, call the provider outside any, record in another.

A worker killed between the call and the record leaves the chunk leased; when the lease expires the
reconciler queues it again, so a crash can repeat one chunk but never lose one.
"""

from __future__ import annotations

from app import metrics
from app.db import SessionFactory, session_scope
from app.kit.ratelimit import Limiter
from app.notices.leasing import Leased, lease_chunk
from app.notices.models import Channel
from app.notices.recording import record_outcome
from app.notices.senders import Outcome, send_email_chunk, send_sms_chunk
from app.providers.base import EmailSender, SmsSender


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
            metrics.observe_outcome(channel, outcome)

    if channel == Channel.EMAIL:
        assert email_sender is not None
        send_email_chunk(leased, email_sender, limiter, record)
    else:
        assert sms_sender is not None
        send_sms_chunk(leased, sms_sender, limiter, record)
    return 0.0
