"""The access matrix: every route of the app × anonymous and each staff role → allowed, 303 to sign in, or 403.

Generated from the app's own route table, so a new route without a rule in tests/web/access_rules.py
fails here; and every state-changing route refuses a missing and a foreign CSRF token.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.models import StaffUser
from app.db import utcnow
from app.web.models import WebSession
from app.web.sessions import cookie_name, hash_token
from tests.web.access_rules import MEMBER, OWN_CHECK, PUBLIC, ROLES, RULES, SAMPLES, STAFF, Route, required_roles, uses
from tests.web.access_rules import routes as route_table

ANONYMOUS = "anonymous"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def people(session: Session) -> dict[str, StaffUser]:
    """One active account per role, and a spare account for admin actions to act on."""
    made = {role: StaffUser(email=f"{role}@matrix.example.org", password_hash=None, role=role, active=True)
            for role in (*ROLES, "target")}
    made["target"].role = "agent"
    session.add_all(made.values())
    session.flush()
    return made


@pytest.fixture
def visitor(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _url(route: Route, people: dict[str, StaffUser]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(people["target"].id) if name == "staff_id" else SAMPLES.get(name, "1")

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, route.path)


def _as(client: TestClient, session: Session, who: str, people: dict[str, StaffUser]) -> None:
    """Make the client anonymous, or signed in as `who` with a session of its own (made for this request)."""
    client.cookies.clear()
    if who == ANONYMOUS:
        return
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(WebSession(token_hash=hash_token(token), kind="staff", subject_id=people[who].id, created_at=now,
                           last_seen_at=now, expires_at=now + timedelta(hours=1)))
    session.flush()
    client.cookies.set(cookie_name(), token)


def _csrf(client: TestClient, who: str) -> str:
    page = client.get("/staff/login" if who == ANONYMOUS else "/staff/sessions")
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, page.text[:300]
    return match.group(1)


def _call(client: TestClient, session: Session, route: Route, who: str, people: dict[str, StaffUser],
          *, token: str | None = "valid") -> Response:
    _as(client, session, who, people)
    url = _url(route, people)
    if route.method not in UNSAFE:
        return client.request(route.method, url)
    data = {}
    if token == "valid":
        data["csrf_token"] = _csrf(client, who)
    elif token is not None:
        data["csrf_token"] = token
    return client.request(route.method, url, data=data)


def _to_sign_in(response: Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/staff/login?next=")


def _expected(rule: object, who: str) -> str:
    if rule in (PUBLIC, OWN_CHECK):
        return "allowed"
    if rule == MEMBER:
        return "to /check"
    if who == ANONYMOUS:
        return "to sign in"
    if rule == STAFF:
        return "allowed"
    return "allowed" if who in rule else "403"  # type: ignore[operator]


def _outcome(response: Response) -> str:
    if response.status_code >= 500:
        return f"error {response.status_code}"
    if _to_sign_in(response):
        return "to sign in"
    if response.status_code == 303 and response.headers["location"].startswith("/check"):
        return "to /check"
    if response.status_code == 403:
        return "403"
    return "allowed"


def test_every_route_has_an_access_rule_that_matches_its_dependencies(app: FastAPI) -> None:
    table = list(route_table(app))
    missing = sorted({f"{r.method} {r.path}" for r in table if r.key not in RULES})
    assert not missing, f"routes without a rule in tests/web/access_rules.py: {missing}"
    for r in table:
        rule = RULES[r.key]
        roles = required_roles(r.dependant)
        if isinstance(rule, tuple):
            assert roles == frozenset(rule), f"{r.method} {r.path}: the table says {rule}, the route {roles}"
        else:
            assert roles is None, f"{r.method} {r.path} checks roles {roles}; its rule says {rule}"
        if rule == STAFF:
            assert uses(r.dependant, "current_staff"), f"{r.method} {r.path} is for staff but does not ask who"
        if rule == MEMBER:
            assert uses(r.dependant, "current_member"), f"{r.method} {r.path} is for members but does not ask"


def test_the_access_matrix(app: FastAPI, visitor: TestClient, session: Session,
                           people: dict[str, StaffUser]) -> None:
    wrong = []
    for route in route_table(app):
        rule = RULES.get(route.key)
        if rule is None:
            continue  # reported by the test above
        for who in (ANONYMOUS, *ROLES):
            got = _outcome(_call(visitor, session, route, who, people))
            if rule == PUBLIC and got == "to /check":
                got = "allowed"  # a public step of the member check that starts it again
            want = _expected(rule, who)
            if rule == OWN_CHECK:
                ok = got not in ("to sign in",) and not got.startswith("error")
            else:
                ok = got == want
            if not ok:
                wrong.append(f"{route.method} {route.path} as {who}: expected {want}, got {got}")
    assert not wrong, "\n".join(wrong)


def test_refused_pages_are_audited(app: FastAPI, visitor: TestClient, session: Session,
                                   people: dict[str, StaffUser]) -> None:
    route = next(r for r in route_table(app) if r.key == ("GET", "/admin/staff"))
    assert _call(visitor, session, route, "agent", people).status_code == 403
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "access.refused")
                            .order_by(AuditEvent.id.desc()).limit(1)).scalar_one()
    assert event.actor == people["agent"].email and event.subject == "GET /admin/staff"


def _allowed_identity(rule: object) -> str:
    if isinstance(rule, tuple):
        return rule[0]
    return "agent" if rule == STAFF else ANONYMOUS


def test_every_state_changing_route_refuses_a_missing_or_foreign_csrf_token(
        app: FastAPI, visitor: TestClient, session: Session, people: dict[str, StaffUser]) -> None:
    unsafe = [r for r in route_table(app) if r.method in UNSAFE and not r.path.startswith("/webhooks/")]
    assert len(unsafe) >= 10
    with TestClient(app, follow_redirects=False) as stranger:
        _as(stranger, session, "admin", people)
        foreign = _csrf(stranger, "admin")
    wrong = []
    for route in unsafe:
        who = _allowed_identity(RULES.get(route.key, PUBLIC))
        for label, token in (("missing", None), ("foreign", foreign)):
            before = session.scalar(select(func.count()).select_from(AuditEvent))
            answer = _call(visitor, session, route, who, people, token=token)
            after = session.scalar(select(func.count()).select_from(AuditEvent))
            if answer.status_code != 403 or after != before:
                wrong.append(f"{route.method} {route.path} with a {label} token: {answer.status_code}, "
                             f"{after - before} audit events")
    assert not wrong, "\n".join(wrong)
