from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin, UtcDateTime, utcnow


class Incident(TimestampMixin, Base):
    """A breach and its public page. Text fields hold operators' Markdown; `_cy` beside each is the Welsh."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    title_cy: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    summary_cy: Mapped[str] = mapped_column(Text, default="")
    happened: Mapped[str] = mapped_column(Text, default="")
    happened_cy: Mapped[str] = mapped_column(Text, default="")
    doing: Mapped[str] = mapped_column(Text, default="")
    doing_cy: Mapped[str] = mapped_column(Text, default="")
    advice: Mapped[str] = mapped_column(Text, default="")
    advice_cy: Mapped[str] = mapped_column(Text, default="")
    helpline_hours: Mapped[str] = mapped_column(String(200), default="")
    helpline_hours_cy: Mapped[str] = mapped_column(String(200), default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    discovered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    # When it was first made public: the feed's start and the date its ids are minted with.
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class IncidentUpdate(Base):
    """A dated public entry on an incident's timeline."""

    __tablename__ = "incident_updates"
    __table_args__ = (UniqueConstraint("incident_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    # 1, 2, 3... within the incident: the public address and feed id (integer keys are never shown).
    number: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    title: Mapped[str] = mapped_column(String(200))
    title_cy: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    body_cy: Mapped[str] = mapped_column(Text, default="")


class IncidentQuestion(Base):
    """One question and answer of an incident's FAQ, in the order operators wrote them."""

    __tablename__ = "incident_questions"
    __table_args__ = (UniqueConstraint("incident_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(String(300))
    question_cy: Mapped[str] = mapped_column(String(300))
    answer: Mapped[str] = mapped_column(Text)
    answer_cy: Mapped[str] = mapped_column(Text)


class IncidentGuidance(Base):
    """What to do when one data category was exposed in one incident (else the category's own guidance)."""

    __tablename__ = "incident_guidance"
    __table_args__ = (UniqueConstraint("incident_id", "category_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(ForeignKey("data_categories.id"))
    guidance: Mapped[str] = mapped_column(Text)
    guidance_cy: Mapped[str] = mapped_column(Text)


class DataCategory(Base):
    """A kind of personal data (police email, NI number...) with what a member should do about it."""

    __tablename__ = "data_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_cy: Mapped[str] = mapped_column(String(100))
    guidance: Mapped[str] = mapped_column(Text)
    guidance_cy: Mapped[str] = mapped_column(Text)
