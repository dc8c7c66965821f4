"""CSRF: every state-changing request carries a token bound to the visitor's cookie, or changes nothing."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from tests.web.conftest import csrf_token, make_staff


def changes(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "test.changed")) or 0


def test_an_anonymous_form_gets_a_pre_session_cookie_and_its_token_works(web: TestClient, session: Session) -> None:
    page = web.get("/t/form")
    assert "portal_pre=" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    token = csrf_token(web)
    answer = web.post("/t/record", data={"csrf_token": token})
    assert answer.status_code == 200 and changes(session) == 1


def test_a_missing_token_is_refused_and_nothing_changes(web: TestClient, session: Session) -> None:
    csrf_token(web)
    answer = web.post("/t/record", data={"other": "x"})
    assert answer.status_code == 403
    assert "nothing was changed" in answer.text
    assert changes(session) == 0


def test_a_token_from_another_visitor_is_refused(edge_app: FastAPI, web: TestClient, session: Session) -> None:
    with TestClient(edge_app, follow_redirects=False) as other:
        foreign = csrf_token(other)
    csrf_token(web)
    answer = web.post("/t/record", data={"csrf_token": foreign})
    assert answer.status_code == 403 and changes(session) == 0


def test_a_token_without_any_cookie_is_refused(edge_app: FastAPI, session: Session) -> None:
    with TestClient(edge_app, follow_redirects=False) as c:
        token = csrf_token(c)
        c.cookies.clear()
        assert c.post("/t/record", data={"csrf_token": token}).status_code == 403
    assert changes(session) == 0


def test_the_token_header_works_for_scripts(web: TestClient, session: Session) -> None:
    token = csrf_token(web)
    assert web.post("/t/record", headers={"x-csrf-token": token}).status_code == 200
    assert web.post("/t/record", headers={"x-csrf-token": "0" * 64}).status_code == 403


def test_signing_in_makes_the_anonymous_token_useless(web: TestClient, session: Session) -> None:
    staff = make_staff(session)
    before = csrf_token(web)
    assert web.post(f"/t/sign-in/staff/{staff.id}", data={"csrf_token": before}).status_code == 303
    assert web.post("/t/record", data={"csrf_token": before}).status_code == 403
    after = csrf_token(web)
    assert after != before
    assert web.post("/t/record", data={"csrf_token": after}).status_code == 200


def test_every_unsafe_method_is_checked(web: TestClient) -> None:
    for method in ("put", "patch", "delete"):
        assert getattr(web, method)("/t/record").status_code == 403


def test_signed_webhooks_need_no_token(web: TestClient) -> None:
    assert web.post("/webhooks/t", data={"a": "b"}).text == "accepted"


def row_counts(session: Session) -> dict[str, int]:
    from app.models import Base

    return {table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables}


def state_changing_routes(app: FastAPI) -> list[tuple[str, str]]:
    import re

    from fastapi.routing import APIRoute, iter_route_contexts

    found = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or (context.path or "").startswith(("/webhooks/", "/t/")):
            continue
        for method in route.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            found.add((method, re.sub(r"\{[^}]+\}", "1", context.path or "")))
    return sorted(found)


def test_every_state_changing_route_refuses_a_missing_or_foreign_token(edge_app: FastAPI, web: TestClient,
                                                                        session: Session) -> None:
    routes = state_changing_routes(edge_app)
    assert ("POST", "/staff/login") in routes and ("POST", "/callback") in routes, routes
    admin = make_staff(session, email="admin@example.org", role="admin")
    web.post(f"/t/sign-in/staff/{admin.id}", data={"csrf_token": csrf_token(web)})
    with TestClient(edge_app, follow_redirects=False) as other:
        foreign = csrf_token(other)
    before = row_counts(session)
    for method, path in routes:
        for token in (None, foreign):
            data = {"csrf_token": token} if token else {}
            answer = web.request(method, path, data={**data, "email": "x@example.org", "reference": "CB-1"})
            assert answer.status_code == 403 and "nothing was changed" in answer.text, (method, path, token)
    assert row_counts(session) == before
