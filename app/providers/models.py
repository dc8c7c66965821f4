"""What the outbox provider stores in the embedded default."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UtcDateTime, utcnow


class OutboxMessage(Base):
    """A message the outbox provider "sent" in the embedded default; address and body encrypted."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    to_enc: Mapped[str] = mapped_column(Text)
    to_index: Mapped[str] = mapped_column(String(64), index=True)
    subject_enc: Mapped[str] = mapped_column(Text, default="")
    body_enc: Mapped[str] = mapped_column(Text)
    provider_message_id: Mapped[str] = mapped_column(String(100))
    delivery_id: Mapped[int | None] = mapped_column(BigId)
    reference: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
