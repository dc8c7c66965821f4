"""The half-way state of a staff sign-in: the password was right, the code is still to come.

Kept in a short-lived signed cookie, not a session: nothing is signed in until the code is right, and
then the edge begins a real session (with a new id). The ticket names the account and is bound to its
password hash, so a password change kills tickets in flight; it lives PENDING_MINUTES.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import Request
from starlette.responses import Response

from app.config import get_settings

PENDING_MINUTES = 5


def cookie_name() -> str:
    return "__Host-portal_signin" if get_settings().https else "portal_signin"


def _mac(staff_id: int, issued: int, password_hash: str) -> str:
    key = get_settings().SECRET_KEY.get_secret_value().encode()
    message = f"staff.pending:{staff_id}:{issued}:{hashlib.sha256(password_hash.encode()).hexdigest()}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def issue(response: Response, *, staff_id: int, password_hash: str) -> None:
    issued = int(time.time())
    settings = get_settings()
    response.set_cookie(cookie_name(), f"{staff_id}.{issued}.{_mac(staff_id, issued, password_hash)}",
                        max_age=PENDING_MINUTES * 60, path="/", secure=settings.https, httponly=True,
                        samesite="lax")


def staff_id_of(request: Request) -> int | None:
    """The account id in a live, untampered ticket (the caller checks the password hash still matches)."""
    raw = request.cookies.get(cookie_name(), "")
    parts = raw.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    staff_id, issued = int(parts[0]), int(parts[1])
    if not 0 <= time.time() - issued <= PENDING_MINUTES * 60:
        return None
    request.state.pending_ticket = (staff_id, issued, parts[2])
    return staff_id


def matches(request: Request, *, password_hash: str | None) -> bool:
    ticket = getattr(request.state, "pending_ticket", None)
    if ticket is None or password_hash is None:
        return False
    staff_id, issued, mac = ticket
    return hmac.compare_digest(_mac(staff_id, issued, password_hash), mac)


def clear(response: Response) -> None:
    settings = get_settings()
    response.delete_cookie(cookie_name(), path="/", secure=settings.https, httponly=True, samesite="lax")
