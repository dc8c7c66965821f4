"""Server-side web sessions: the cookie carries a random id; the table keeps only its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UtcDateTime, utcnow


class WebSession(Base):
    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_kind_subject", "kind", "subject_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # SHA-256 of the cookie value: a copy of this table does not let anyone sign in.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # "staff" or "member"
    subject_id: Mapped[int] = mapped_column(BigId)  # staff_users.id or members.id, by kind
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)  # the absolute timeout
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
