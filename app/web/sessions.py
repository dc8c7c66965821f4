"""Server-side sessions for staff and members.

The cookie holds 32 random bytes; the table holds their SHA-256. Every request looks its session up, so
a session that was ended, or has been idle or alive too long, is refused on its very next request.
Signing in always makes a new session (and a new id), ending the one the request came with.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.config import Environment, Settings, get_settings
from app.db import utcnow
from app.kit.repository import Repository
from app.web.models import WebSession

KINDS = ("staff", "member")
# last_seen_at is written at most this often: the idle timeout is minutes, a write per page is waste.
TOUCH_EVERY = timedelta(seconds=30)
# A page that refreshes itself (static/js/refresh.js) says so with this header: such a request is not activity,
# so an open tab does not keep an idle session alive. Sending it can only shorten the sender's own session.
BACKGROUND_HEADER = "x-background-refresh"


class WebSessionRepository(Repository[WebSession]):
    model = WebSession

    def by_token_hash(self, token_hash: str) -> WebSession | None:
        return self.get_one_or_none(select(WebSession).where(WebSession.token_hash == token_hash))

    def open_for(self, *, kind: str, subject_id: int) -> Sequence[WebSession]:
        return self.list(select(WebSession).where(WebSession.kind == kind, WebSession.subject_id == subject_id,
                                                  WebSession.ended_at.is_(None)).order_by(WebSession.created_at))

    def end_for(self, *, kind: str, subject_id: int, keep_id: int | None, now: datetime) -> int:
        stmt = update(WebSession).where(WebSession.kind == kind, WebSession.subject_id == subject_id,
                                        WebSession.ended_at.is_(None)).values(ended_at=now)
        if keep_id is not None:
            stmt = stmt.where(WebSession.id != keep_id)
        return int(self.session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]

    def delete_finished_before(self, cutoff: datetime) -> int:
        stmt = delete(WebSession).where(or_(WebSession.ended_at < cutoff, WebSession.expires_at < cutoff))
        return int(self.session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def secure_cookies(settings: Settings) -> bool:
    """Cookies are Secure and `__Host-` when served over HTTPS, and always in production (where plain HTTP
    then keeps nobody signed in, rather than sending session ids in clear)."""
    return settings.https or settings.ENV is Environment.PRODUCTION


def cookie_name(settings: Settings | None = None) -> str:
    """`__Host-` (Secure, host-only, Path=/) whenever cookies are secure."""
    settings = settings or get_settings()
    return "__Host-portal_session" if secure_cookies(settings) else "portal_session"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def timeouts(kind: str, settings: Settings | None = None) -> tuple[timedelta, timedelta]:
    """(idle, absolute) timeouts for a kind of session."""
    settings = settings or get_settings()
    if kind == "staff":
        return (timedelta(minutes=settings.STAFF_SESSION_IDLE_MINUTES),
                timedelta(hours=settings.STAFF_SESSION_MAX_HOURS))
    return timedelta(minutes=settings.MEMBER_SESSION_IDLE_MINUTES), timedelta(hours=settings.MEMBER_SESSION_MAX_HOURS)


def is_live(web_session: WebSession, *, now: datetime, settings: Settings | None = None) -> bool:
    idle, _ = timeouts(web_session.kind, settings)
    return web_session.ended_at is None and now < web_session.expires_at and now < web_session.last_seen_at + idle


def _set_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(cookie_name(settings), token, path="/", secure=secure_cookies(settings), httponly=True,
                        samesite="lax")


def _clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(cookie_name(settings), path="/", secure=secure_cookies(settings), httponly=True,
                           samesite="lax")


def current_session(db: Session, request: Request) -> WebSession | None:
    """The request's live session, or None; looked up once per request and kept on request.state."""
    state = request.state
    if hasattr(state, "web_session"):
        return state.web_session  # type: ignore[no-any-return]
    token = request.cookies.get(cookie_name())
    found = WebSessionRepository(db).by_token_hash(hash_token(token)) if token else None
    now = utcnow()
    if found is not None and not is_live(found, now=now):
        found = None
    background = request.headers.get(BACKGROUND_HEADER) == "1"
    if found is not None and now - found.last_seen_at >= TOUCH_EVERY and not background:
        found.last_seen_at = now
    state.web_session = found
    return found


def begin_session(db: Session, request: Request, response: Response, *, kind: str, subject_id: int) -> WebSession:
    """Start a new session (sign-in, or a change of privilege): the request's old session ends, the id is new."""
    if kind not in KINDS:
        raise ValueError(f"unknown session kind {kind!r}")
    settings = get_settings()
    old = current_session(db, request)
    now = utcnow()
    if old is not None:
        old.ended_at = now
    token = secrets.token_urlsafe(32)
    _, absolute = timeouts(kind, settings)
    web_session = WebSessionRepository(db).add(
        WebSession(token_hash=hash_token(token), kind=kind, subject_id=subject_id, created_at=now, last_seen_at=now,
                   expires_at=now + absolute, user_agent=request.headers.get("user-agent", "")[:200]),
        flush=True)
    _set_cookie(response, token, settings)
    request.state.web_session = web_session
    # Forms rendered later in this request bind to the new session, not the old one.
    request.state.csrf_binding = "s:" + token
    return web_session


def end_session(db: Session, request: Request, response: Response) -> None:
    """Sign out: the request's session ends now and its cookie is cleared."""
    current = current_session(db, request)
    if current is not None:
        current.ended_at = utcnow()
    request.state.web_session = None
    _clear_cookie(response, get_settings())


def end_sessions_for_staff(db: Session, *, staff_id: int, keep_session_id: int | None = None) -> int:
    """End every open session of one staff member (but `keep_session_id`); returns how many ended."""
    return WebSessionRepository(db).end_for(kind="staff", subject_id=staff_id, keep_id=keep_session_id, now=utcnow())


def end_sessions_for_member(db: Session, *, member_id: int) -> int:
    """End every open session of one member; returns how many ended."""
    return WebSessionRepository(db).end_for(kind="member", subject_id=member_id, keep_id=None, now=utcnow())


def sessions_for_staff(db: Session, *, staff_id: int) -> list[WebSession]:
    """One staff member's live sessions, oldest first."""
    now = utcnow()
    return [s for s in WebSessionRepository(db).open_for(kind="staff", subject_id=staff_id) if is_live(s, now=now)]


def end_staff_session(db: Session, *, staff_id: int, session_id: int) -> bool:
    """End one of a staff member's own sessions; False if it is not theirs or already ended."""
    found = WebSessionRepository(db).get(session_id)
    if found is None or found.kind != "staff" or found.subject_id != staff_id or found.ended_at is not None:
        return False
    found.ended_at = utcnow()
    return True


def prune_sessions(db: Session, *, keep_days: float = 7.0) -> int:
    """Delete sessions that ended or expired more than `keep_days` ago; returns how many."""
    return WebSessionRepository(db).delete_finished_before(utcnow() - timedelta(days=keep_days))
