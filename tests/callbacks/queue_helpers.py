"""Callback requests and agents made straight in the database, for the queue's tests and benchmark."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.models import StaffUser
from app.callbacks import service
from app.callbacks.models import CallbackRequest, CallbackStatus, Priority
from app.db import utcnow
from app.members import pii


def agent(session: Session, name: str = "agent", *, role: str = "agent", branch_id: int | None = None) -> StaffUser:
    user = StaffUser(email=f"{name}-{secrets.token_hex(3)}@helpline.example.org", password_hash=None, role=role,
                     active=True, branch_id=branch_id)
    session.add(user)
    session.flush()
    return user


def waiting(session: Session, *, priority: Priority = Priority.NORMAL, phone: str = "",
            start: datetime | None = None, due: datetime | None = None, member_id: int | None = None,
            passphrase: str = "blue heron", flush: bool = True) -> CallbackRequest:
    """A waiting request whose window started an hour ago (unless `start` says otherwise)."""
    now = utcnow()
    start = start or now - timedelta(hours=1)
    keys = pii.keyring()
    phone = phone or f"+4477009{secrets.randbelow(10**5):05d}"
    request = CallbackRequest(
        reference=service.new_reference(), member_id=member_id,
        name_enc=keys.encrypt("Sam Evans", context=service.NAME_CONTEXT),
        phone_enc=keys.encrypt(phone, context=service.PHONE_CONTEXT), phone_index=secrets.token_hex(16),
        window_start=start, window_end=start + timedelta(hours=4), topic="affected", urgent=False,
        passphrase_enc=keys.encrypt(passphrase, context=service.PASSPHRASE_CONTEXT), language="en",
        priority=int(priority), status=CallbackStatus.WAITING, due_at=due or start + service.sla(priority),
        attempts=0, created_at=now, updated_at=now)
    session.add(request)
    if flush:
        session.flush()
    return request
