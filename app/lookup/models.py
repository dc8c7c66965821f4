"""One-time codes for "check your status": the browser's token and the code are stored only as keyed hashes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UtcDateTime, utcnow


class ChallengeStatus(StrEnum):
    PENDING = "pending"  # the identifier is waiting to be looked up by a worker
    SENT = "sent"  # a member's code was queued for sending
    UNMATCHED = "unmatched"  # we hold no such member: nothing was sent, and the web answers the same
    VERIFIED = "verified"
    SUPERSEDED = "superseded"  # a newer code for the same member replaced this one
    LOCKED = "locked"  # too many wrong codes


class VerificationChallenge(Base):
    """One "check your status" attempt: what a visitor typed (sealed until looked up) and the code sent.

    Every request to /check makes one, whether or not we hold the member, so the web does the same
    work either way; a worker looks the identifier up and, for a member, sends the code.
    """

    __tablename__ = "verification_challenges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Keyed hash of the random token in the visitor's cookie: the table alone does not let anyone answer.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Keyed hash of the normalised identifier: limits and audit count it without holding the identifier.
    identifier_hash: Mapped[str] = mapped_column(String(64), index=True)
    # The identifier, encrypted, until the worker has looked it up (then cleared).
    identifier_enc: Mapped[str | None] = mapped_column(Text)
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str | None] = mapped_column(String(10))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2), default="en")
    status: Mapped[str] = mapped_column(String(12), default=ChallengeStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_sent_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
