"""One identity per staff member in the trail: whatever a person did (sign in, take and record calls, be
refused a page, manage staff), filtering by their email finds it, on /admin/audit and with
`portal audit show --who`; and upgrading relabels the old `staff:<id>` events without breaking the chain."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.auth import service as auth_service
from app.auth.models import Role
from app.cli import app as cli
from app.db import alembic_config, default_session_factory, session_scope
from tests.auth.web import post_form, sign_in
from tests.callbacks.queue_helpers import waiting
from tests.operators import Operator

PASSWORD = "correct horse battery"
runner = CliRunner()


def _person(email: str, role: Role) -> Operator:
    with session_scope(default_session_factory()) as s:
        made = auth_service.create_staff(s, email=email, role=role, password=PASSWORD, actor="bootstrap")
        return Operator(made.user.email, PASSWORD, made.totp_secret)


@pytest.fixture
def web(fresh_database: str) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(run_embedded_worker=False), follow_redirects=False) as client:
        yield client


def _who_did(output: str) -> list[tuple[str, str]]:
    """(actor, action) of each line `portal audit show` printed."""
    return [(m[1], m[2]) for m in re.finditer(r"^#\d+ \S+ \S+ (\S+) (\S+)", output, re.MULTILINE)]


def _page_rows(page: str) -> list[tuple[str, str]]:
    """(actor, action) of each row of the /admin/audit table."""
    rows = re.findall(r"<tr><td>\d+</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", page)
    return [(html.unescape(a), html.unescape(b)) for a, b in rows]


def test_every_kind_of_action_by_a_staff_member_is_found_by_their_email(web: TestClient) -> None:
    sue = _person("sue@helpline.example.org", Role.SUPERVISOR)
    ada = _person("ada@helpline.example.org", Role.ADMIN)
    ian = _person("ian@helpline.example.org", Role.AUDITOR)
    with session_scope(default_session_factory()) as s:
        first, second = waiting(s).id, waiting(s).id

    # Sue signs in, takes a call, reads it and records it, reprioritises another and is refused staff admin.
    assert sign_in(web, sue).status_code == 303
    taken = post_form(web, "/staff/queue", "/staff/queue/take")
    assert taken.headers["location"] == f"/staff/queue/{first}"
    assert post_form(web, f"/staff/queue/{first}", f"/staff/queue/{first}/outcome",
                     outcome="resolved", notes="").status_code == 303
    assert post_form(web, "/staff/queue/overview", f"/staff/queue/{second}/priority",
                     priority="1").status_code == 303
    assert web.get("/admin/staff").status_code == 403
    # Ada signs in, changes Sue's role, and is refused the queue.
    web.cookies.clear()
    assert sign_in(web, ada).status_code == 303
    with session_scope(default_session_factory()) as s:
        sue_id = s.execute(text("SELECT id FROM staff_users WHERE email = :e"), {"e": sue.email}).scalar_one()
    assert post_form(web, f"/admin/staff/{sue_id}", f"/admin/staff/{sue_id}/role", role="agent").status_code == 303
    assert web.get("/staff/queue").status_code == 403

    sue_did = {"staff.sign_in", "callback.claimed", "callback.details_viewed", "callback.attempt",
               "callback.reprioritised", "access.refused"}
    ada_did = {"staff.sign_in", "staff.role_changed", "access.refused"}

    # The command: --who EMAIL finds every one of them, and only theirs.
    for who, did in ((sue, sue_did), (ada, ada_did)):
        result = runner.invoke(cli, ["audit", "show", "--who", who.email, "--last", "500"])
        assert result.exit_code == 0, result.output
        found = _who_did(result.output)
        assert {actor for actor, _ in found} == {who.email}
        assert {action for _, action in found} >= did, f"{who.email}: missing {did - {a for _, a in found}}"

    # The page: an auditor filters by the email (as typed, in any case).
    web.cookies.clear()
    assert sign_in(web, ian).status_code == 303
    for who, did in ((sue, sue_did), (ada, ada_did)):
        page = web.get("/admin/audit", params={"actor": who.email.upper()})
        assert page.status_code == 200
        rows = _page_rows(page.text)
        assert {actor for actor, _ in rows} == {who.email}
        assert {action for _, action in rows} >= did, f"{who.email}: missing {did - {a for _, a in rows}}"

    # Their subject label finds them too (what the page's hint used to suggest).
    by_number = web.get("/admin/audit", params={"actor": f"staff:{sue_id}"})
    assert {actor for actor, _ in _page_rows(by_number.text)} == {sue.email}

    # Nobody is named by number any more, and the trail still verifies.
    with session_scope(default_session_factory()) as s:
        assert not s.scalars(select(AuditEvent.actor).where(AuditEvent.actor.like("staff:%"))).all()
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0 and "audit trail intact" in result.output


def _insert_chain(conn, rows: list[tuple[str, str, str]]) -> list[int]:  # type: ignore[no-untyped-def]
    """Append keyed events (actor, action, subject) the way the code before 0012 wrote them."""
    prev = "0" * 64
    for i, (actor, action, subject) in enumerate(rows):
        event = AuditEvent(occurred_at=datetime(2026, 12, 7, 9, i, tzinfo=UTC), actor=actor, action=action,
                           subject=subject, details={"n": i})
        digest = audit_service._digest(prev, event)
        conn.execute(AuditEvent.__table__.insert().values(
            occurred_at=event.occurred_at, actor=actor, action=action, subject=subject, details={"n": i},
            prev_hash=prev, hash=digest))
        prev = digest
    return list(conn.execute(text("SELECT id FROM audit_events ORDER BY id")).scalars())


def _add_staff(conn, email: str, role: str) -> int:  # type: ignore[no-untyped-def]
    now = datetime(2026, 12, 1, tzinfo=UTC)
    conn.execute(text("INSERT INTO staff_users (email, role, active, created_at, updated_at) "
                      "VALUES (:e, :r, :a, :n, :n)"), {"e": email, "r": role, "a": True, "n": now})
    return int(conn.execute(text("SELECT id FROM staff_users WHERE email = :e"), {"e": email}).scalar_one())


def test_upgrading_relabels_staff_ids_with_emails_and_the_chain_still_verifies(database_url: str) -> None:
    from tests.conftest import create_database, drop_database, use_database

    name = f"portal_audit_identity_{os.getpid()}"
    sue_email = "sue@helpline.example.org"
    url = create_database(name)
    try:
        config = alembic_config(url)
        command.upgrade(config, "0011")
        engine = create_engine(url)
        with engine.begin() as conn:
            sue = _add_staff(conn, sue_email, "supervisor")
            ids = _insert_chain(conn, [
                ("system", "callback.lease_expired", "callbacks"),
                ("sue@helpline.example.org", "staff.sign_in", f"staff:{sue}"),
                (f"staff:{sue}", "callback.claimed", "callback:1"),
                (f"staff:{sue}", "callback.attempt", "callback:1"),
                ("anonymous", "access.refused", "staff enrolment link"),
                (f"staff:{sue}", "access.refused", "GET /admin/staff"),
                ("staff:999", "callback.released", "callback:2"),  # no such account: left as it is
            ])
        command.upgrade(config, "0012")
        with Session(engine) as session:
            report = audit_service.verify_chain(session)
            assert report.intact and report.events == 7
            actors = dict(session.execute(select(AuditEvent.id, AuditEvent.actor)).tuples().all())
            assert [actors[i] for i in ids] == [
                "system", "sue@helpline.example.org", "sue@helpline.example.org", "sue@helpline.example.org",
                "anonymous", "sue@helpline.example.org", "staff:999"]
        use_database(url)
        try:
            result = runner.invoke(cli, ["audit", "verify"])
            assert result.exit_code == 0 and "audit trail intact: 7 events" in result.output
            shown = runner.invoke(cli, ["audit", "show", "--who", "sue@helpline.example.org"])
            assert len(_who_did(shown.output)) == 4
        finally:
            from app import db

            stale = db._engines.pop(url, None)
            if stale is not None:
                stale.dispose()
            use_database(database_url)
        # Down and up again: the old labels come back for the queue's and refused pages' events, sealed.
        command.downgrade(config, "0011")
        with Session(engine) as session:
            labels = list(session.scalars(select(AuditEvent.actor).order_by(AuditEvent.id)))
            assert labels[2] == labels[3] == labels[5] == f"staff:{sue}"
            assert labels[1] == "sue@helpline.example.org"
        command.upgrade(config, "0012")  # relabels only as far as the chain verifies: all of it, so sealed
        with Session(engine) as session:
            assert audit_service.verify_chain(session).intact
            assert session.scalar(select(AuditEvent.actor).where(AuditEvent.id == ids[2])) == sue_email
        engine.dispose()
    finally:
        drop_database(name)


def test_upgrading_does_not_launder_an_edit_made_before_it(database_url: str) -> None:
    from tests.conftest import create_database, drop_database

    name = f"portal_audit_identity_b_{os.getpid()}"
    url = create_database(name)
    try:
        config = alembic_config(url)
        command.upgrade(config, "0011")
        engine = create_engine(url)
        with engine.begin() as conn:
            sue = _add_staff(conn, "sue@helpline.example.org", "supervisor")
            ids = _insert_chain(conn, [(f"staff:{sue}", "callback.claimed", f"callback:{i}") for i in range(5)])
            conn.execute(text("UPDATE audit_events SET subject = 'callback:77' WHERE id = :i"), {"i": ids[3]})
        command.upgrade(config, "0012")
        with Session(engine) as session:
            assert audit_service.verify_chain(session).first_broken_id == ids[3]
            actors = list(session.scalars(select(AuditEvent.actor).order_by(AuditEvent.id)))
            assert actors[:3] == ["sue@helpline.example.org"] * 3 and actors[3:] == [f"staff:{sue}"] * 2
        engine.dispose()
    finally:
        drop_database(name)
