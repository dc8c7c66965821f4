"""Real identities on the command line: `--by EMAIL` proved by password and current code, with the right role."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.auth.service import CODE_JUST_USED, GENERIC_REFUSAL
from app.cli import app
from app.db import default_session_factory, session_scope
from tests.operators import Operator, operators_from_demo

runner = CliRunner()


def portal(*argv: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(argv), input=stdin)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def audit_since(event_id: int) -> list[AuditEvent]:
    with session_scope(default_session_factory()) as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.id > event_id).order_by(AuditEvent.id)).scalars()
        return [AuditEvent(actor=e.actor, action=e.action, subject=e.subject, details=e.details) for e in rows]


def last_id() -> int:
    with session_scope(default_session_factory()) as session:
        return session.execute(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)).scalar() or 0


@pytest.fixture
def staff(fresh_database: str) -> dict[str, Operator]:
    out = portal("demo", "--members", "10")
    operators = operators_from_demo(out)
    assert set(operators) >= {"admin@example.org", "approver@example.org", "supervisor@example.org",
                              "agent@example.org"}, out
    return operators


def draft(staff: dict[str, Operator]) -> str:
    out = portal("campaign", "create", "--incident", "hq-2019", "--by", "admin@example.org",
                 stdin=staff["admin@example.org"].proof())
    return out.split("campaign ", 1)[1].split()[0]


def test_the_author_cannot_approve_their_own_campaign(staff: dict[str, Operator]) -> None:
    campaign_id = draft(staff)
    before = last_id()
    out = portal("campaign", "approve", campaign_id, "--by", "admin@example.org", code=1,
                 stdin=staff["admin@example.org"].proof())
    assert "different admin" in out and len(out.strip().splitlines()) == 1
    events = audit_since(before)
    assert [e.action for e in events] == ["staff.sign_in", "access.refused"]
    assert events[1].actor == "admin@example.org" and events[1].subject == "cli campaign approve"
    out = portal("campaign", "approve", campaign_id, "--by", "approver@example.org",
                 stdin=staff["approver@example.org"].proof())
    assert "approved by approver@example.org" in out
    approved = [e for e in audit_since(before) if e.action == "campaign.approve"]
    assert [e.actor for e in approved] == ["approver@example.org"], "the trail names the proved identity"


def test_approve_with_a_wrong_code_is_refused_and_recorded(staff: dict[str, Operator]) -> None:
    campaign_id = draft(staff)
    before = last_id()
    out = portal("campaign", "approve", campaign_id, "--by", "approver@example.org", code=2,
                 stdin=staff["approver@example.org"].wrong_code())
    assert out.strip() == f"refused: {GENERIC_REFUSAL}"
    events = audit_since(before)
    assert [(e.action, e.details.get("step"), e.details.get("via")) for e in events] == [
        ("staff.sign_in_failed", "code", "cli")]
    assert "campaign.approve" not in [e.action for e in audit_since(0)]


def test_a_code_that_proved_a_command_says_wait_for_the_next_one_and_is_not_counted(
        staff: dict[str, Operator], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings

    admin = staff["admin@example.org"]
    proof = admin.proof()
    portal("campaign", "create", "--incident", "hq-2019", "--by", admin.email, stdin=proof)
    before = last_id()
    monkeypatch.setenv("PORTAL_LOGIN_BACKOFF_AFTER", "1")
    monkeypatch.setenv("PORTAL_LOGIN_LOCK_AFTER", "2")
    get_settings.cache_clear()
    try:
        for _ in range(3):
            out = portal("campaign", "create", "--incident", "hq-2019", "--by", admin.email, stdin=proof, code=2)
            assert out == f"refused: {CODE_JUST_USED}\n"
        # Not counted as failures: no back-off and no lock; the next code works at once.
        assert "campaign " in portal("campaign", "create", "--incident", "hq-2019", "--by", admin.email,
                                     stdin=admin.proof())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    trail = [(e.action, e.details.get("reason")) for e in audit_since(before) if e.action.startswith("staff.")]
    assert trail == [("staff.sign_in_refused", "code_reused")] * 3 + [("staff.sign_in", None)]


def test_stop_all_needs_a_proved_identity_with_the_right_role(staff: dict[str, Operator]) -> None:
    before = last_id()
    out = portal("stop-all", code=2)
    assert "needs --by EMAIL" in out and len(out.strip().splitlines()) == 1
    out = portal("stop-all", "--by", "supervisor@example.org", code=2, stdin="")
    assert "needs supervisor@example.org's password and current code" in out
    out = portal("stop-all", "--by", "agent@example.org", stdin=staff["agent@example.org"].proof(), code=2)
    assert "agent@example.org is an agent; `stop-all` needs admin or supervisor" in out
    assert "all sending stopped" in portal("stop-all", "--by", "supervisor@example.org",
                                           stdin=staff["supervisor@example.org"].proof())
    out = portal("resume-all", "--by", "supervisor@example.org", stdin=staff["supervisor@example.org"].proof(),
                 code=2)
    assert "needs admin" in out
    assert "sending resumed" in portal("resume-all", "--by", "admin@example.org",
                                       stdin=staff["admin@example.org"].proof())
    trail = [(e.action, e.actor, e.details.get("reason") or e.details.get("role")) for e in audit_since(before)
             if e.action != "staff.sign_in"]
    assert trail == [
        ("access.refused", "anonymous", "no_identity"),
        ("access.refused", "anonymous", "no_proof"),
        ("access.refused", "agent@example.org", "agent"),
        ("sending.stop_all", "supervisor@example.org", None),
        ("access.refused", "supervisor@example.org", "supervisor"),
        ("sending.resume_all", "admin@example.org", None),
    ]


def test_unknown_address_wrong_password_and_locked_account_get_the_same_line(
        staff: dict[str, Operator], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings

    admin = staff["admin@example.org"]
    unknown = portal("stop-all", "--by", "nobody@example.org", stdin=admin.proof(), code=2)
    monkeypatch.setenv("PORTAL_LOGIN_LOCK_AFTER", "2")
    get_settings.cache_clear()
    wrong = portal("stop-all", "--by", admin.email, stdin="not the password\n123456\n", code=2)
    try:
        portal("stop-all", "--by", admin.email, stdin="not the password\n123456\n", code=2)  # the second: locks
        locked = portal("stop-all", "--by", admin.email, stdin=admin.proof(), code=2)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert unknown == wrong == locked == f"refused: {GENERIC_REFUSAL}\n"
    assert "staff.locked" in [e.action for e in audit_since(0)]


def test_the_first_admin_is_created_without_an_identity_only_once(fresh_database: str) -> None:
    out = portal("create-staff", "--email", "first@example.org", "--role", "agent", stdin="a long password 1\n",
                 code=2)
    assert "must be an admin" in out
    out = portal("create-staff", "--email", "First@Example.org", "--role", "admin", stdin="a long password 1\n")
    assert "the first admin" in out and "TOTP secret (shown once): " in out
    secret = out.split("TOTP secret (shown once): ", 1)[1].split()[0]
    assert "needs --by EMAIL" in portal("create-staff", "--email", "second@example.org", "--role", "admin",
                                         stdin="another password 2\n", code=2)
    first = Operator("first@example.org", "a long password 1", secret)
    out = portal("create-staff", "--email", "second@example.org", "--role", "agent", "--by", first.email,
                 stdin=first.proof())
    link = out.strip().splitlines()[-1]
    assert "/staff/enrol/" in link and "password" not in link
    actions: list[Any] = [(e.action, e.actor) for e in audit_since(0) if e.action.startswith("staff.")]
    assert ("staff.create", "bootstrap") in actions and ("staff.invite", "first@example.org") in actions
    listing = portal("staff", "list", "--by", first.email, stdin=first.proof())
    assert "second@example.org" in listing and "never" in listing


def test_a_lock_caused_from_other_addresses_never_blocks_the_command_line(
        staff: dict[str, Operator], monkeypatch: pytest.MonkeyPatch) -> None:
    from app.auth import service as auth_service
    from app.config import get_settings

    supervisor = staff["supervisor@example.org"]
    monkeypatch.setenv("PORTAL_LOGIN_LOCK_AFTER", "3")
    get_settings.cache_clear()
    try:
        # An outsider who knows the address, guessing from three addresses: the account locks for browsers
        # that never signed in as this person...
        with session_scope(default_session_factory()) as session:
            for i in range(3):
                assert auth_service.check_password(session, email=supervisor.email, password="a wrong guess 1",
                                                   client=f"198.51.100.{i + 1}") is None
        with session_scope(default_session_factory()) as session:
            assert auth_service.check_password(session, email=supervisor.email, password=supervisor.password,
                                               client="198.51.100.99") is None
        # ...but not for the supervisor at the command line: stop-all still works.
        assert "all sending stopped" in portal("stop-all", "--by", supervisor.email, stdin=supervisor.proof())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert "staff.locked" in [e.action for e in audit_since(0)]


def test_an_admin_resets_a_second_factor_and_gets_a_one_time_link(staff: dict[str, Operator]) -> None:
    from app.auth import service as auth_service

    admin = staff["admin@example.org"]
    out = portal("staff", "reset-second-factor", "agent@example.org", "--by", admin.email, stdin=admin.proof())
    link = out.strip().splitlines()[-1]
    assert "/staff/enrol/" in link and "one-time link" in out
    token = link.rsplit("/", 1)[1]
    with session_scope(default_session_factory()) as session:
        person = auth_service.enrolment_account(session, token=token)
        assert person is not None and person.email == "agent@example.org" and not person.enrolled
    # The agent's password alone no longer signs in, and shows no new key.
    agent = staff["agent@example.org"]
    out = portal("stop-all", "--by", agent.email, stdin=agent.proof(), code=2)
    assert out == f"refused: {GENERIC_REFUSAL}\n"
    actions = [(e.action, e.actor) for e in audit_since(0) if e.action == "staff.second_factor_reset"]
    assert actions == [("staff.second_factor_reset", "admin@example.org")]


def test_an_admin_sets_and_clears_a_branch_from_the_command_line(staff: dict[str, Operator]) -> None:
    from app.auth import service as auth_service

    admin = staff["admin@example.org"]
    out = portal("staff", "set-branch", "agent@example.org", "kent", "--by", admin.email, stdin=admin.proof())
    assert "agent@example.org now has branch kent" in out
    out = portal("staff", "set-branch", "agent@example.org", "atlantis", "--by", admin.email, stdin=admin.proof(),
                 code=1)
    assert "no branch with the code 'atlantis'" in out
    with session_scope(default_session_factory()) as session:
        assert auth_service.staff_by_email(session, "agent@example.org").branch_id is not None
    portal("staff", "set-branch", "agent@example.org", "none", "--by", admin.email, stdin=admin.proof())
    with session_scope(default_session_factory()) as session:
        assert auth_service.staff_by_email(session, "agent@example.org").branch_id is None
    changes = [e for e in audit_since(0) if e.action == "staff.branch_changed"]
    assert [e.actor for e in changes] == ["admin@example.org"] * 2
