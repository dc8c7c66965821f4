"""Notice campaigns, their templates, one delivery per member and channel, provider events, suppressions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, TimestampMixin, UtcDateTime, utcnow


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"  # planned, waiting for a worker (or for its next attempt)
    SENDING = "sending"  # leased by a worker until lease_until
    SENT = "sent"  # accepted by the provider
    DELIVERED = "delivered"  # the provider reports it reached the member
    FAILED = "failed"  # permanent failure: provider code and reason kept
    BOUNCED = "bounced"  # accepted, then bounced or dropped by the provider
    CANCELLED = "cancelled"  # the campaign was cancelled before it went


# Statuses only move forward: a late "sent" never overwrites "delivered".
STATUS_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.BOUNCED: 3,
    DeliveryStatus.CANCELLED: 3,
}
PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
REACHED = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
UNSUCCESSFUL = (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)


class Campaign(TimestampMixin, Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    channels: Mapped[str] = mapped_column(String(20))  # "email", "sms" or "email,sms"
    # {"categories": [...], "branches": [...], "language": "en"|"cy"|None, "not_reached": bool}
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sms_fallback: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(20), default=CampaignStatus.DRAFT, index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    planned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Last time a worker planned or leased for this campaign; the reconciler restarts silent ones.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def channel_list(self) -> list[Channel]:
        return [Channel(c) for c in self.channels.split(",") if c]


class NoticeTemplate(Base):
    """One channel and language of a campaign's notice, as Jinja2 source rendered in a sandbox."""

    __tablename__ = "notice_templates"
    __table_args__ = (UniqueConstraint("campaign_id", "channel", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)


class Delivery(Base):
    """One notice to one member over one channel: the row is the truth, the queue only wakes workers."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "member_id", "channel"),
        # Only queued rows are waiting for a sender; receipts moving sent rows on never touch this index.
        Index("ix_deliveries_work", "campaign_id", "channel", "variant", "id",
              postgresql_where=text("status = 'queued'"), sqlite_where=text("status = 'queued'")),
        # Partial indexes: rows are inserted queued and without a provider id, so these cost nothing then.
        Index("ix_deliveries_lease", "lease_until", postgresql_where=text("status = 'sending'"),
              sqlite_where=text("status = 'sending'")),
        # Counts by channel and status (`campaign status`, every few seconds during a send) read this index
        # alone: without it they read every row of the campaign, over a second at 200,000 rows on SQLite.
        Index("ix_deliveries_campaign_status", "campaign_id", "channel", "status"),
        Index("ix_deliveries_provider_message_id", "provider_message_id",
              postgresql_where=text("provider_message_id IS NOT NULL"),
              sqlite_where=text("provider_message_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"), index=True)
    # The member's branch when planned, for evidence by branch (branches are fixed reference data, so no
    # foreign key: one trigger fewer per row on a 120,000-row insert).
    branch_id: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(2))
    # Members sharing a variant (language and exposed categories) get the same rendered content.
    variant: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    error_code: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(String(500))
    fallback_of_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SkipReason(StrEnum):
    NO_ADDRESS = "no_address"  # nothing on file for the channel (for SMS: no number that can take SMS)
    SUPPRESSED = "suppressed"  # the contact is on the suppression list (unsubscribed, STOP, hard bounce)


class Skipped(Base):
    """A member in a campaign's audience who gets no delivery on a channel, and why.

    Not a delivery: nothing was sent or tried, so these never count as provider failures. They are
    counted apart (status, evidence) and listed among the members not reached.
    """

    __tablename__ = "campaign_skips"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id", "channel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id", ondelete="CASCADE"), index=True)
    branch_id: Mapped[int] = mapped_column(Integer)  # as for deliveries: evidence by branch without a join
    channel: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ProviderEvent(Base):
    """A provider webhook event, kept once (deduplicated) and without the recipient's address."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(120))
    event: Mapped[str] = mapped_column(String(30))
    delivery_id: Mapped[int | None] = mapped_column(BigId, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Suppression(Base):
    """A contact that must not be messaged on a channel (unsubscribed, spam report, hard bounce)."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "contact_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    contact_index: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SendingSwitch(Base):
    """The global stop switch: one row; while `stopped`, no worker leases anything."""

    __tablename__ = "sending_switch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_by: Mapped[str] = mapped_column(String(254), default="")
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
