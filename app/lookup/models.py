"""One-time codes for "check your status": the browser's token and the code are stored only as keyed hashes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UtcDateTime, utcnow


class ChallengeStatus(StrEnum):
    # Only the web moves a challenge between these, and it decides from what it can see for every
    # identifier alike; whether a member is behind it stays in the worker's columns (member_id, code_hash).
    LIVE = "live"  # a code may be out; tries count
    LOCKED = "locked"  # the code's budget of tries is spent: only a new code opens it again


class VerificationChallenge(Base):
    """The code for one identifier: its tries, expiry and sends, whether or not we hold the identifier.

    Every check for an identifier, from any browser, shares its newest challenge, so that the code the
    owner received is the one that works and a new code is sent only when the last one can no longer be
    used (and no more than CHECK_MAX_SENDS an hour). A worker looks the identifier up and, for a member,
    sends the code; it writes only its own columns, so nothing the web answers depends on the lookup.
    """

    __tablename__ = "verification_challenges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Keyed hash of the normalised identifier: the challenge is found by it, without holding the identifier.
    identifier_hash: Mapped[str] = mapped_column(String(64), index=True)
    # The identifier, encrypted, until the worker has looked it up (then cleared); sealed again by each check.
    identifier_enc: Mapped[str | None] = mapped_column(Text)
    # The worker's: the member found (none for a stranger), the channel and the code's keyed hash.
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str | None] = mapped_column(String(10))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2), default="en")
    # The web's: what every visitor's answers are made of.
    status: Mapped[str] = mapped_column(String(12), default=ChallengeStatus.LIVE)
    # Codes typed for the current code by every browser together (its budget, CHECK_CODE_GLOBAL_TRIES);
    # each browser's own tries are on its token.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Which code this is: a browser's tries count only on the round they were made on.
    code_round: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=0)  # codes asked for since sends_since
    sends_since: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_sent_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Set while a job for the worker is outstanding (the sweeper queues it again if the queue lost it).
    asked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CheckToken(Base):
    """One browser's check: a random token in its cookie, stored only as a keyed hash, and which identifier."""

    __tablename__ = "check_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    identifier_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # This browser's tries (CHECK_CODE_TRIES) on the code of round `tries_round`: one browser's wrong
    # codes refuse only that browser, never the owner's.
    tries: Mapped[int] = mapped_column(Integer, default=0)
    tries_round: Mapped[int] = mapped_column(Integer, default=0)
