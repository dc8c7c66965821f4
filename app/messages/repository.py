"""Queries over transactional messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update

from app.kit.repository import Repository
from app.messages.models import MessageStatus, TransactionalMessage

T = TransactionalMessage


class TransactionalRepository(Repository[TransactionalMessage]):
    model = TransactionalMessage

    def lease(self, message_id: int, now: datetime, lease_until: datetime) -> TransactionalMessage | None:
        """Take one due message for sending: a guarded update that only one worker can win."""
        changed = self.session.execute(
            update(T).where(T.id == message_id, T.status == MessageStatus.QUEUED, T.next_attempt_at <= now)
            .values(status=MessageStatus.SENDING, lease_until=lease_until, attempts=T.attempts + 1)
            .returning(T.id)).scalar_one_or_none()
        return None if changed is None else self.get(message_id)

    def by_reference(self, reference: str) -> TransactionalMessage | None:
        return self.session.execute(select(T).where(T.reference == reference)).scalar_one_or_none()

    def stuck(self, now: datetime, queued_before: datetime, limit: int = 500) -> Sequence[TransactionalMessage]:
        """Messages the queue has lost: queued and due a while ago, or leased by a worker that went quiet."""
        return self.list(select(T).where(or_(
            (T.status == MessageStatus.QUEUED) & (T.next_attempt_at <= queued_before),
            (T.status == MessageStatus.SENDING) & (T.lease_until < now),
        )).order_by(T.id).limit(limit).with_for_update(skip_locked=True))
