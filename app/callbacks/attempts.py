"""Calls made for a callback request: one row per attempt, with its outcome and the agent's notes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UtcDateTime, utcnow


class Outcome(StrEnum):
    RESOLVED = "resolved"  # reached, nothing more to do
    FOLLOW_UP = "follow_up"  # reached, needs another call
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    WRONG_NUMBER = "wrong_number"
    CALL_LATER = "call_later"  # the member asked to be called at another time


# Outcomes in which nobody was reached: these count towards closing a request as unreachable.
UNREACHED = frozenset({Outcome.NO_ANSWER, Outcome.VOICEMAIL})


class ClosedReason(StrEnum):
    RESOLVED = "resolved"
    UNREACHABLE = "unreachable"
    WRONG_NUMBER = "wrong_number"


class CallbackAttempt(Base):
    """One call. Notes are sealed with the PII keyring: an agent may write what the member said."""

    __tablename__ = "callback_attempts"
    __table_args__ = (Index("ix_callback_attempts_staff_made", "staff_id", "made_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(BigId, ForeignKey("callback_requests.id", ondelete="CASCADE"),
                                            index=True)
    staff_id: Mapped[int] = mapped_column(Integer, ForeignKey("staff_users.id"))
    outcome: Mapped[str] = mapped_column(String(20))
    notes_enc: Mapped[str | None] = mapped_column(Text)
    call_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    made_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
