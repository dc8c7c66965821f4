"""The half-way state of a staff sign-in: the password was right (or a one-time link was used), the code is
still to come.

Kept in a short-lived signed cookie, not a session: nothing is signed in until the code is right, and
then the edge begins a real session (with a new id). A ticket names the account and its purpose:
- CODE: the password was right; the person types a code from their app;
- SET_UP: the person opened their one-time enrolment (or reset) link and chose a password; only this
  ticket shows a new authenticator key, so the key is bound to whoever opened the link.
It is bound to the password hash, the last sign-in and the second factor's state, so a password change,
a reset, or the sign-in it leads to kills it (single use); it lives PENDING_MINUTES.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import Request
from starlette.responses import Response

from app.auth.models import StaffUser
from app.config import get_settings
from app.web.sessions import secure_cookies

PENDING_MINUTES = 5
CODE = "code"
SET_UP = "set-up"


def cookie_name() -> str:
    return "__Host-portal_signin" if secure_cookies(get_settings()) else "portal_signin"


def _mac(user: StaffUser, issued: int, purpose: str) -> str:
    key = get_settings().SECRET_KEY.get_secret_value().encode()
    state = "|".join([user.password_hash or "", str(user.last_login_at or ""), str(user.totp_confirmed_at or "")])
    message = f"staff.pending:{purpose}:{user.id}:{issued}:{hashlib.sha256(state.encode()).hexdigest()}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def issue(response: Response, *, user: StaffUser, purpose: str) -> None:
    issued = int(time.time())
    response.set_cookie(cookie_name(), f"{user.id}.{issued}.{_mac(user, issued, purpose)}",
                        max_age=PENDING_MINUTES * 60, path="/", secure=secure_cookies(get_settings()), httponly=True,
                        samesite="lax")


def staff_id_of(request: Request) -> int | None:
    """The account id in a live ticket (the caller checks it with `matches`)."""
    raw = request.cookies.get(cookie_name(), "")
    parts = raw.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[0]) > 12:
        return None
    staff_id, issued = int(parts[0]), int(parts[1])
    if not 0 <= time.time() - issued <= PENDING_MINUTES * 60:
        return None
    request.state.pending_ticket = (staff_id, issued, parts[2])
    return staff_id


def matches(request: Request, *, user: StaffUser, purpose: str) -> bool:
    """Whether the request's ticket is untampered, for this purpose, and still matches the account's state."""
    ticket = getattr(request.state, "pending_ticket", None)
    if ticket is None or user.password_hash is None or ticket[0] != user.id:
        return False
    _, issued, mac = ticket
    return hmac.compare_digest(_mac(user, issued, purpose).encode(), mac.encode("utf-8", "surrogatepass"))


def clear(response: Response) -> None:
    response.delete_cookie(cookie_name(), path="/", secure=secure_cookies(get_settings()), httponly=True,
                           samesite="lax")
