"""Callback requests: a member (or anyone) asks the helpline to phone them back."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UtcDateTime, utcnow


class CallbackStatus(StrEnum):
    WAITING = "waiting"
    CLAIMED = "claimed"  # an agent holds it until lease_until
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (CallbackStatus.WAITING, CallbackStatus.CLAIMED)


class Priority(IntEnum):
    """Lower is sooner. Signed-in (verified) members first: urgent or vulnerable, then those whose financial data
    was exposed, then the rest; only then anyone else, whose "urgent" orders them among themselves alone (a
    stranger's urgent junk never outranks a verified member)."""

    URGENT = 1
    FINANCIAL = 2
    NORMAL = 3
    UNVERIFIED_URGENT = 4
    UNVERIFIED = 5


class CallbackRequest(Base):
    """One request for a call back. Name, phone and passphrase are encrypted; the phone has a blind index."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        # The helpline's queue: open requests by priority, then due time.
        Index("ix_callback_requests_queue", "priority", "due_at",
              postgresql_where=text("status = 'waiting'"), sqlite_where=text("status = 'waiting'")),
        # Claims whose lease ran out go back to the queue: found by this index, not by a scan.
        Index("ix_callback_requests_leases", "lease_until",
              postgresql_where=text("status = 'claimed'"), sqlite_where=text("status = 'claimed'")),
        # One open request per phone and per member, even when two arrive at once.
        Index("uq_callback_requests_open_phone", "phone_index", unique=True,
              postgresql_where=text("status IN ('waiting', 'claimed')"),
              sqlite_where=text("status IN ('waiting', 'claimed')")),
        Index("uq_callback_requests_open_member", "member_id", unique=True,
              postgresql_where=text("status IN ('waiting', 'claimed') AND member_id IS NOT NULL"),
              sqlite_where=text("status IN ('waiting', 'claimed') AND member_id IS NOT NULL")),
        # One live claim per agent: a double "take next" cannot hide a second request behind a lease.
        Index("uq_callback_requests_one_claim_per_agent", "claimed_by", unique=True,
              postgresql_where=text("status = 'claimed'"), sqlite_where=text("status = 'claimed'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id", ondelete="SET NULL"))
    name_enc: Mapped[str] = mapped_column(Text)
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_index: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime)
    topic: Mapped[str] = mapped_column(String(40))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    passphrase_enc: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(2), default="en")
    priority: Mapped[int] = mapped_column(Integer, default=Priority.NORMAL)
    status: Mapped[str] = mapped_column(String(10), default=CallbackStatus.WAITING)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Why a closed request closed (app.callbacks.attempts.ClosedReason); empty for a cancelled one.
    closed_reason: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The last confirmation sent to the phone (a repeated request re-sends it at most this often).
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CallbackText(Base):
    """One text sent about a callback request: counted per phone (whoever asks) and, for numbers not on file,
    towards the hourly ceiling for all. Only the phone's blind index is kept."""

    __tablename__ = "callback_texts"
    __table_args__ = (Index("ix_callback_texts_phone_sent", "phone_index", "sent_at"),
                      Index("ix_callback_texts_unknown_sent", "on_file", "sent_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(64))
    on_file: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
