"""Sessions: server-side, rotated at sign-in, refused on the very next request once ended or expired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.config import get_settings
from app.db import utcnow
from app.web import sessions
from app.web.models import WebSession
from tests.web.conftest import csrf_token, make_staff


def sign_in(client: TestClient, kind: str, subject_id: int) -> None:
    answer = client.post(f"/t/sign-in/{kind}/{subject_id}", data={"csrf_token": csrf_token(client)})
    assert answer.status_code == 303


def signed_in_as(client: TestClient) -> str | None:
    answer = client.get("/t/me")
    if answer.status_code == 303:
        assert answer.headers["location"].startswith("/staff/login?next=")
        return None
    assert answer.status_code == 200
    return answer.text


def open_session(session: Session, staff_id: int) -> WebSession:
    return session.scalars(select(WebSession).where(WebSession.subject_id == staff_id,
                                                    WebSession.ended_at.is_(None))).one()


def test_the_cookie_holds_a_random_id_stored_only_hashed(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    assert signed_in_as(web) is None
    sign_in(web, "staff", staff.id)
    cookie = web.cookies.get("portal_session")
    assert cookie and len(cookie) >= 40
    row = open_session(session, staff.id)
    assert row.token_hash != cookie and row.token_hash == sessions.hash_token(cookie)
    assert signed_in_as(web) == "agent@example.org"


def test_cookie_flags(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    answer = web.post(f"/t/sign-in/staff/{staff.id}", data={"csrf_token": csrf_token(web)})
    header = answer.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "path=/" in header
    assert "max-age" not in header and "expires" not in header  # ends with the browser, or earlier


def test_production_cookies_are_secure_and_host_only(monkeypatch: pytest.MonkeyPatch, session: Session,
                                                      session_factory) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PORTAL_PUBLIC_BASE_URL", "https://portal.example.org")
    get_settings.cache_clear()
    try:
        from app.main import create_app
        from tests.web.conftest import router

        app = create_app(run_embedded_worker=False)
        app.state.session_factory = session_factory
        app.include_router(router)
        staff = make_staff(session)
        with TestClient(app, base_url="https://portal.example.org", follow_redirects=False) as client:
            page = client.get("/t/form")
            assert page.headers["set-cookie"].startswith("__Host-portal_pre=")
            assert "secure" in page.headers["set-cookie"].lower()
            answer = client.post(f"/t/sign-in/staff/{staff.id}", data={"csrf_token": csrf_token(client)})
            header = answer.headers["set-cookie"]
            assert header.startswith("__Host-portal_session=")
            assert "secure" in header.lower() and "domain" not in header.lower()
            assert client.get("/t/me").text == "agent@example.org"
    finally:
        get_settings.cache_clear()


def test_signing_in_again_rotates_the_id_and_ends_the_old_session(edge_app: FastAPI, web: TestClient,
                                                                   session: Session) -> None:
    staff = make_staff(session)
    sign_in(web, "staff", staff.id)
    first = web.cookies.get("portal_session")
    sign_in(web, "staff", staff.id)
    second = web.cookies.get("portal_session")
    assert first != second
    assert signed_in_as(web) == "agent@example.org"
    with TestClient(edge_app, follow_redirects=False, cookies={"portal_session": first}) as replay:
        assert signed_in_as(replay) is None, "the id from before the sign-in no longer works"


def test_a_revoked_session_is_refused_on_its_next_request(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    sign_in(web, "staff", staff.id)
    assert signed_in_as(web) is not None
    assert sessions.end_sessions_for_staff(session, staff_id=staff.id) == 1
    session.flush()
    assert signed_in_as(web) is None


def test_keep_one_session_when_ending_the_others(edge_app: FastAPI, web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    sign_in(web, "staff", staff.id)
    with TestClient(edge_app, follow_redirects=False) as laptop:
        sign_in(laptop, "staff", staff.id)
        keep = int(laptop.get("/t/session").text)
        assert len(sessions.sessions_for_staff(session, staff_id=staff.id)) == 2
        assert sessions.end_sessions_for_staff(session, staff_id=staff.id, keep_session_id=keep) == 1
        assert signed_in_as(laptop) is not None
    assert signed_in_as(web) is None


def test_an_idle_session_expires(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    sign_in(web, "staff", staff.id)
    row = open_session(session, staff.id)
    row.last_seen_at = utcnow() - timedelta(minutes=29)
    session.flush()
    assert signed_in_as(web) is not None, "29 minutes idle is still within the staff idle timeout"
    row.last_seen_at = utcnow() - timedelta(minutes=31)
    session.flush()
    assert signed_in_as(web) is None


def test_a_busy_session_still_ends_at_the_absolute_timeout(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    sign_in(web, "staff", staff.id)
    row = open_session(session, staff.id)
    row.created_at = utcnow() - timedelta(hours=12, minutes=1)
    row.expires_at = row.created_at + timedelta(hours=12)
    session.flush()
    assert row.last_seen_at > utcnow() - timedelta(minutes=1)
    assert signed_in_as(web) is None


def test_member_sessions_are_short(web: TestClient, session: Session) -> None:
    sign_in(web, "member", 42)
    assert web.get("/t/member").text == "member 42"
    assert signed_in_as(web) is None, "a member session is not a staff session"
    row = session.scalars(select(WebSession).where(WebSession.kind == "member")).one()
    assert row.expires_at - row.created_at == timedelta(hours=1)
    row.last_seen_at = utcnow() - timedelta(minutes=16)
    session.flush()
    answer = web.get("/t/member")
    assert answer.status_code == 303 and answer.headers["location"] == "/check"


def test_sign_out_ends_the_session(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    sign_in(web, "staff", staff.id)
    cookie = web.cookies.get("portal_session")
    assert web.post("/t/sign-out", data={"csrf_token": csrf_token(web)}).status_code == 303
    web.cookies.set("portal_session", cookie)  # a copy kept by someone else
    assert signed_in_as(web) is None


def test_a_deactivated_account_is_refused_at_once(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    sign_in(web, "staff", staff.id)
    staff.active = False
    session.flush()
    assert signed_in_as(web) is None


def test_the_wrong_role_gets_403_and_is_audited(web: TestClient, session: Session) -> None:
    agent = make_staff(session)
    sign_in(web, "staff", agent.id)
    answer = web.get("/t/admin-only")
    assert answer.status_code == 403 and "permission" in answer.text
    refused = session.scalars(select(AuditEvent).where(AuditEvent.action == "access.refused")).all()
    assert [e.actor for e in refused] == [agent.email]
    admin = make_staff(session, email="admin@example.org", role="admin")
    sign_in(web, "staff", admin.id)
    assert web.get("/t/admin-only").text == "admin admin@example.org"


def test_anonymous_staff_pages_go_to_sign_in_and_come_back(web: TestClient) -> None:
    answer = web.get("/t/admin-only?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/staff/login?next=/t/admin-only%3Fx%3D1"


def test_finished_sessions_are_pruned_after_a_week(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    sign_in(web, "staff", staff.id)
    live = open_session(session, staff.id)
    now = utcnow()
    session.add_all([
        WebSession(token_hash="a" * 64, kind="staff", subject_id=staff.id, created_at=now - timedelta(days=9),
                   last_seen_at=now - timedelta(days=9), expires_at=now - timedelta(days=8), user_agent=""),
        WebSession(token_hash="b" * 64, kind="staff", subject_id=staff.id, created_at=now - timedelta(days=2),
                   last_seen_at=now - timedelta(days=2), expires_at=now + timedelta(hours=1),
                   ended_at=now - timedelta(days=2), user_agent=""),
    ])
    session.flush()
    assert sessions.prune_sessions(session) == 1
    left = {s.token_hash for s in session.scalars(select(WebSession)).all()}
    assert left == {live.token_hash, "b" * 64}
    assert signed_in_as(web) == "agent@example.org"


def test_pages_for_someone_signed_in_are_not_cached(web: TestClient, session: Session) -> None:
    assert "cache-control" not in web.get("/").headers, "public pages may be cached"
    staff = make_staff(session)
    answer = web.post(f"/t/sign-in/staff/{staff.id}", data={"csrf_token": csrf_token(web)})
    assert answer.headers["cache-control"] == "no-store"
    assert web.get("/t/me").headers["cache-control"] == "no-store"
    assert web.get("/").headers["cache-control"] == "no-store"


def test_production_cookies_are_secure_even_if_the_base_url_says_http(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import Settings
    from app.web.csrf import pre_cookie_name

    monkeypatch.setenv("PORTAL_ENV", "production")
    settings = Settings(PUBLIC_BASE_URL="http://portal.example.org", SECRET_KEY="k" * 40, AUDIT_KEY="a" * 40,
                        PII_KEY="k1:" + "B" * 43 + "=")
    assert sessions.secure_cookies(settings)
    assert sessions.cookie_name(settings) == "__Host-portal_session"
    assert pre_cookie_name(settings) == "__Host-portal_pre"
