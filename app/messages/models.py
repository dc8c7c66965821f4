"""Transactional messages: one-time codes and confirmations, each a row before it is queued."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UtcDateTime, utcnow


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # leased by a worker until lease_until
    SENT = "sent"
    FAILED = "failed"  # permanent failure, or out of attempts
    EXPIRED = "expired"  # not sent before it stopped being useful (a code past its expiry)


class TransactionalMessage(Base):
    """One message to one person; contact and content encrypted, the content cleared once sent."""

    __tablename__ = "transactional_messages"
    __table_args__ = (
        # The sweeper looks only at rows still moving.
        Index("ix_transactional_messages_moving", "status", "next_attempt_at",
              postgresql_where=text("status IN ('queued', 'sending')"),
              sqlite_where=text("status IN ('queued', 'sending')")),
        # "Verify a message" finds a message by the reference printed at its end.
        Index("ix_transactional_messages_reference", "reference", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # "check_code", "callback_confirmation", ...
    channel: Mapped[str] = mapped_column(String(10))  # "email" or "sms"
    # Printed at the end of the message, like a notice's, so /verify-message can confirm it is ours.
    # Empty only on messages sent before messages carried one.
    reference: Mapped[str | None] = mapped_column(String(14))
    language: Mapped[str] = mapped_column(String(2), default="en")
    to_enc: Mapped[str] = mapped_column(Text)
    subject_enc: Mapped[str | None] = mapped_column(Text)
    body_enc: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=MessageStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
