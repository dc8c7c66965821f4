"""Browsers a staff member has signed in from (OWASP's device cookies against online guessing).

After a successful sign-in the browser gets a cookie holding 32 random bytes bound to that person; the
table keeps their SHA-256. A sign-in from a browser whose cookie is valid for the address typed is judged
by that device's own counter, so failures from anywhere else (an outsider guessing, a lock they caused)
never keep the person out of it. The cookie follows the edge's rule: Secure and `__Host-` whenever
cookies are secure (HTTPS, and always in production).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.auth.models import StaffDevice, StaffUser
from app.auth.repository import DeviceRepository, StaffRepository
from app.config import get_settings
from app.db import utcnow
from app.web.sessions import secure_cookies

# A person's devices beyond this many (the least recently used) are forgotten.
KEEP_PER_PERSON = 10


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime() -> timedelta:
    return timedelta(days=get_settings().STAFF_DEVICE_DAYS)


def known_device(session: Session, *, token: str | None, email: str, now: datetime | None = None
                 ) -> StaffDevice | None:
    """The unexpired device this token belongs to, if it belongs to the active account for `email`."""
    if not token or len(token) > 100:
        return None
    device = DeviceRepository(session).by_token_hash(_hash(token))
    if device is None or device.expires_at <= (now or utcnow()):
        return None
    user = StaffRepository(session).get(device.staff_id)
    if user is None or not user.active or user.email != email.strip().lower():
        return None
    return device


def remember_device(session: Session, *, user: StaffUser, token: str | None, now: datetime | None = None) -> str:
    """After a successful sign-in: the token this browser keeps (its own, renewed, or a new one)."""
    now = now or utcnow()
    repo = DeviceRepository(session)
    device = known_device(session, token=token, email=user.email, now=now)
    if device is None or token is None:
        token = secrets.token_urlsafe(32)
        device = repo.add(StaffDevice(staff_id=user.id, token_hash=_hash(token), created_at=now, last_used_at=now,
                                      expires_at=now + _lifetime()), flush=True)
    device.last_used_at = now
    device.expires_at = now + _lifetime()
    repo.delete_stale(user.id, keep=KEEP_PER_PERSON, now=now)
    return token


def forget_devices(session: Session, *, staff_id: int) -> int:
    """Trust none of this person's browsers any more (a lost phone or laptop, a deactivated account)."""
    return DeviceRepository(session).delete_for(staff_id)


# --- the cookie ------------------------------------------------------------------------------------------


def cookie_name() -> str:
    return "__Host-portal_device" if secure_cookies(get_settings()) else "portal_device"


def token_of(request: Request) -> str | None:
    return request.cookies.get(cookie_name()) or None


def set_cookie(response: Response, token: str) -> None:
    settings = get_settings()
    response.set_cookie(cookie_name(), token, max_age=int(_lifetime().total_seconds()), path="/",
                        secure=secure_cookies(settings), httponly=True, samesite="lax")
