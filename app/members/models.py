from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, TimestampMixin, UtcDateTime, utcnow


class Member(TimestampMixin, Base):
    """A member. Email and phone are stored only encrypted, with keyed blind indexes for lookup."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    membership_number: Mapped[str] = mapped_column(String(32), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[str] = mapped_column(String(50), default="")
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    preferred_language: Mapped[str] = mapped_column(String(2), default="en")
    email_enc: Mapped[str | None] = mapped_column(Text)
    email_index: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    # Whether the phone can take SMS (mobile, or fixed-line-or-mobile); NULL when there is no phone, or for
    # a phone imported before this was recorded (treated as SMS-capable until its member is imported again).
    phone_sms: Mapped[bool | None] = mapped_column(Boolean)
    pii_key_id: Mapped[str] = mapped_column(String(32))


class Exposure(Base):
    """One data category of one member exposed in one incident."""

    __tablename__ = "exposures"
    __table_args__ = (UniqueConstraint("member_id", "incident_id", "category_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"))
    incident_id: Mapped[int] = mapped_column(Integer, ForeignKey("incidents.id"), index=True)
    category_id: Mapped[int] = mapped_column(Integer, ForeignKey("data_categories.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
