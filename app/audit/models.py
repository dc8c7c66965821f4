from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UtcDateTime, utcnow


class AuditEvent(Base):
    """Append-only; each row carries the hash of the previous one (a tamper-evident chain)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditCheckpoint(Base):
    """How far the chain was last verified: that event's id and hash, and how many events up to it. The page
    checks the chain from here; `portal audit verify` checks it all. Sealed under PORTAL_AUDIT_KEY, so moving
    it past a changed event takes the key as well as the table."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_hash: Mapped[str] = mapped_column(String(64))
    events: Mapped[int] = mapped_column(BigInteger)
    verified_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    seal: Mapped[str] = mapped_column(String(64))
