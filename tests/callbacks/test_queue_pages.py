"""The helpline's pages through the web: an agent takes next and records a call, a supervisor's overview
and actions, a branch viewer's suppressed counts, the auditors' trail and its CSV export, and the metrics."""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.auth.models import StaffUser
from app.branches.models import Branch
from app.callbacks.models import Priority
from app.db import utcnow
from app.members.models import Member
from app.web.models import WebSession
from app.web.sessions import cookie_name, hash_token
from tests.callbacks.queue_helpers import agent, waiting
from tests.lookup.helpers import member


@pytest.fixture
def web(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as client:
        yield client


def sign_in(web: TestClient, session: Session, user: StaffUser) -> None:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(WebSession(token_hash=hash_token(token), kind="staff", subject_id=user.id, created_at=now,
                           last_seen_at=now, expires_at=now + timedelta(hours=1)))
    session.flush()
    web.cookies.clear()
    web.cookies.set(cookie_name(), token)


def post(web: TestClient, page: str, path: str, data: dict[str, str] | None = None) -> object:
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', web.get(page).text)
    assert token
    return web.post(path, data={**(data or {}), "csrf_token": token.group(1)})


def test_an_agent_takes_next_sees_the_passphrase_and_records_a_call(web: TestClient, session: Session) -> None:
    request = waiting(session, passphrase="silver birch", phone="+447700900444")
    me = agent(session)
    sign_in(web, session, me)
    page = web.get("/staff/queue")
    assert page.status_code == 200 and request.reference in page.text and 'data-refresh="30"' in page.text
    taken = post(web, "/staff/queue", "/staff/queue/take")
    assert taken.status_code == 303 and taken.headers["location"] == f"/staff/queue/{request.id}"  # type: ignore[attr-defined]
    sheet = web.get(f"/staff/queue/{request.id}")
    assert sheet.status_code == 200 and "silver birch" in sheet.text and "+447700900444" in sheet.text
    bad = post(web, f"/staff/queue/{request.id}", f"/staff/queue/{request.id}/outcome",
               {"outcome": "call_later", "call_at": ""})
    assert bad.status_code == 422 and "Enter a time in the future" in bad.text  # type: ignore[attr-defined]
    done = post(web, f"/staff/queue/{request.id}", f"/staff/queue/{request.id}/outcome",
                {"outcome": "resolved", "notes": "Explained what was exposed"})
    assert done.status_code == 303  # type: ignore[attr-defined]
    session.refresh(request)
    assert request.status == "closed" and request.closed_reason == "resolved"
    assert "The call was recorded" in web.get("/staff/queue?recorded=1").text


def test_another_agent_cannot_open_a_claimed_request(web: TestClient, session: Session) -> None:
    request = waiting(session)
    owner, nosy = agent(session, "owner"), agent(session, "nosy")
    sign_in(web, session, owner)
    post(web, "/staff/queue", "/staff/queue/take")
    sign_in(web, session, nosy)
    assert web.get(f"/staff/queue/{request.id}").status_code == 409
    assert "silver" not in web.get(f"/staff/queue/{request.id}").text


def test_a_supervisor_sees_the_overview_and_reassigns(web: TestClient, session: Session) -> None:
    request = waiting(session, priority=Priority.URGENT, due=utcnow() - timedelta(minutes=5))
    target = agent(session, "target")
    boss = agent(session, "boss", role="supervisor")
    sign_in(web, session, boss)
    page = web.get("/staff/queue/overview")
    assert page.status_code == 200 and request.reference in page.text and "Overdue" in page.text
    moved = post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/reassign", {"agent": str(target.id)})
    assert moved.status_code == 303  # type: ignore[attr-defined]
    session.refresh(request)
    assert request.status == "claimed" and request.claimed_by == target.id
    assert target.email in web.get("/staff/queue/overview").text
    post(web, "/staff/queue/overview", f"/staff/queue/{request.id}/release")
    session.refresh(request)
    assert request.status == "waiting"


def test_a_branch_viewer_sees_only_counts_of_five_or_more(web: TestClient, session: Session) -> None:
    ids = [member(session, f"BV{n:04d}", phone=f"07700 9{n:05d}") for n in range(7)]
    branch_id = session.get(Member, ids[0]).branch_id  # type: ignore[union-attr]
    for member_id in ids[:6]:
        waiting(session, member_id=member_id)
    claimed = waiting(session, member_id=ids[6])
    claimed.status = "claimed"
    claimed.lease_until = utcnow() + timedelta(minutes=5)
    session.flush()
    viewer = agent(session, "viewer", role="branch_viewer", branch_id=branch_id)
    sign_in(web, session, viewer)
    page = web.get("/staff/branch")
    assert page.status_code == 200
    assert session.get(Branch, branch_id).name in page.text  # type: ignore[union-attr]
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td>([^<]+)</td>', page.text))
    assert rows["Waiting"] == "6"
    assert rows["Being called"].startswith("Fewer than 5"), "a count of 1 is never shown"
    assert rows["Overdue"] == "0"


def test_the_audit_page_filters_checks_the_chain_and_exports_safe_csv(web: TestClient, session: Session) -> None:
    audit_service.record(session, actor="staff:77", action="callback.claimed", subject="=HYPERLINK(\"x\")")
    audit_service.record(session, actor="staff:78", action="staff.deactivated", subject="staff:9")
    auditor = agent(session, "auditor", role="auditor")
    sign_in(web, session, auditor)
    page = web.get("/admin/audit", params={"actor": "staff:77"})
    assert page.status_code == 200
    assert "<td>callback.claimed</td>" in page.text and "<td>staff.deactivated</td>" not in page.text
    assert "The chain is intact" in page.text
    by_action = web.get("/admin/audit", params={"action": "staff.*", "since": utcnow().date().isoformat()})
    assert "<td>staff.deactivated</td>" in by_action.text and "<td>callback.claimed</td>" not in by_action.text
    export = web.get("/admin/audit.csv", params={"actor": "staff:77"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0][:3] == ["id", "occurred_at", "actor"] and len(rows) == 2
    assert rows[1][4] == "'=HYPERLINK(\"x\")", "a formula is neutralised"


def test_the_metrics_show_queue_depth_claims_and_outcomes(web: TestClient, session: Session,
                                                         app) -> None:  # type: ignore[no-untyped-def]
    waiting(session, priority=Priority.FINANCIAL)
    waiting(session, priority=Priority.FINANCIAL)
    me = agent(session)
    sign_in(web, session, me)
    post(web, "/staff/queue", "/staff/queue/take")
    with TestClient(app, client=("127.0.0.1", 1000)) as operator:
        text = operator.get("/metrics").text
    assert 'portal_callback_queue_depth{priority="financial"} 1.0' in text
    assert 'portal_callback_claimed 1.0' in text
    assert re.search(r'portal_callback_claims_total\{how="take_next"\} [1-9]', text)
    assert "portal_callback_oldest_wait_seconds" in text


def test_the_queue_shows_when_a_request_is_due_in_uk_time(web: TestClient, session: Session) -> None:
    """In summer the helpline's clocks are on BST: a request due at 17:30 UTC is due at 18:30 on the page."""
    from datetime import datetime

    due = datetime(2031, 7, 1, 17, 30, tzinfo=UTC)
    request = waiting(session, due=due)
    sign_in(web, session, agent(session))
    row = re.search(rf"<tr>(?:(?!</tr>).)*{request.reference}(?:(?!</tr>).)*</tr>", web.get("/staff/queue").text, re.S)
    assert row and "2031-07-01 18:30" in row.group(0) and "17:30" not in row.group(0)
