from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin, UtcDateTime


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    AUDITOR = "auditor"
    BRANCH_VIEWER = "branch_viewer"


class StaffUser(TimestampMixin, Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    # Empty until the person chooses one through their enrolment link.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # Encrypted with the PII keyring; set when enrolment starts, trusted only once confirmed with a code.
    totp_secret_enc: Mapped[str | None] = mapped_column(Text)
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The last TOTP time step accepted: a code for that step or an earlier one is refused (replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(20))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # SHA-256 of the one-time enrolment token; cleared when it is used.
    enrolment_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolment_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def enrolled(self) -> bool:
        return self.password_hash is not None and self.totp_confirmed_at is not None


class LoginThrottle(Base):
    """Failed sign-in attempts per account (keyed hash of the address typed) or per client address."""

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))  # "account" or "client"
    key: Mapped[str] = mapped_column(String(64))  # HMAC of the lower-cased email or of the client address
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StaffDevice(Base):
    """A browser that has signed in as this person (OWASP's device cookies): its cookie holds a random token,
    this row only its SHA-256. Sign-in failures from it count against it alone, never against the account,
    so nobody can keep the person out of a browser they have used before."""

    __tablename__ = "staff_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
