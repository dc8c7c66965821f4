"""Every `portal` verb that acts for a proved staff member, each in a fresh process as an operator runs it.

In-process tests share one interpreter that has long imported every model; an operator's `portal` starts
with nothing loaded, so each verb here runs in a process of its own (`python -m app.cli`, what
`.venv/bin/portal` runs), with the password and a current code on stdin, and must exit 0 and do its job.
Each verb is proved by an admin of its own, so no verb waits for the next authenticator time step.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth import service as auth_service
from app.auth.models import Role, StaffUser
from app.branches.models import Branch
from app.db import default_session_factory, session_scope
from app.demo.service import load_demo
from app.incidents.models import Incident, IncidentGuidance, IncidentQuestion, IncidentUpdate
from app.notices.models import Campaign, SendingSwitch
from tests.operators import Operator

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a long test password"
_numbers = itertools.count(1)

INCIDENT_EN = """# Attack on our systems

We found malware on our servers.

## What happened

Ransomware reached three databases.

## What we are doing

We told the regulator.

## What you should do

Check any message on our checker.
"""
INCIDENT_CY = """# Ymosodiad ar ein systemau

Daethom o hyd i faleiswedd.

## Beth ddigwyddodd

Cyrhaeddodd meddalwedd wystlo dair cronfa ddata.

## Beth rydym yn ei wneud

Rydym wedi dweud wrth y rheoleiddiwr.

## Beth y dylech ei wneud

Gwiriwch unrhyw neges ar ein gwiriwr.
"""


def new_staff(role: Role = Role.ADMIN) -> Operator:
    """A staff member enrolled with a password and authenticator, as the demo's logins are."""
    email = f"{role.value}-{next(_numbers)}@example.org"
    with session_scope(default_session_factory()) as session:
        created = auth_service.create_staff(session, email=email, role=role, password=PASSWORD, actor="test")
    return Operator(email, PASSWORD, created.totp_secret)


def portal(*argv: str, by: Operator | None = None) -> str:
    """`portal ARGV` in a new process; with `by`, proved as that staff member. Exit 0 and no traceback."""
    args = [*argv, "--by", by.email] if by else list(argv)
    result = subprocess.run([sys.executable, "-m", "app.cli", *args], check=False, input=by.proof() if by else "",
                            capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})
    shown = result.stdout + result.stderr
    assert result.returncode == 0, f"portal {' '.join(args)} exited {result.returncode}:\n{shown}"
    assert "Traceback" not in shown, shown
    return result.stdout


def audited(action: str) -> list[tuple[str, str | None]]:
    with session_scope(default_session_factory()) as session:
        rows = session.execute(select(AuditEvent.actor, AuditEvent.subject).where(AuditEvent.action == action)
                               .order_by(AuditEvent.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def one(model: Any, **where: Any) -> Any:
    with session_scope(default_session_factory()) as session:
        return session.execute(select(model).filter_by(**where)).scalar_one()


@pytest.fixture
def demo(fresh_database: str) -> None:
    with session_scope(default_session_factory()) as session:
        load_demo(session, members=10, with_staff=False)


def markdown(tmp_path: Path, name: str, en: str, cy: str) -> list[str]:
    (tmp_path / f"{name}.en.md").write_text(en, "utf-8")
    (tmp_path / f"{name}.cy.md").write_text(cy, "utf-8")
    return ["--en", str(tmp_path / f"{name}.en.md"), "--cy", str(tmp_path / f"{name}.cy.md")]


def test_every_incident_verb_works_for_a_proved_admin_in_a_new_process(demo: None, tmp_path: Path) -> None:
    page = markdown(tmp_path, "incident", INCIDENT_EN, INCIDENT_CY)
    creator = new_staff()
    assert "draft" in portal("incident", "create", "inc-2026", *page, "--discovered", "2026-11-30", by=creator)
    assert not one(Incident, code="inc-2026").published
    assert audited("incident.create")[-1][0] == creator.email

    edited = markdown(tmp_path, "edited", INCIDENT_EN.replace("Attack on our systems", "Cyber attack"), INCIDENT_CY)
    portal("incident", "edit", "inc-2026", *edited, by=new_staff())
    assert one(Incident, code="inc-2026").title == "Cyber attack"

    portal("incident", "publish", "inc-2026", by=new_staff())
    assert one(Incident, code="inc-2026").published

    update = markdown(tmp_path, "update", "# Helpline extended\n\nOpen at weekends.",
                      "# Estyn y llinell gymorth\n\nAr agor ar benwythnosau.")
    assert "/updates/inc-2026/1" in portal("incident", "update", "inc-2026", *update, by=new_staff())
    incident_id = one(Incident, code="inc-2026").id
    assert one(IncidentUpdate, incident_id=incident_id).title == "Helpline extended"

    faq = markdown(tmp_path, "faq", "## Who was affected?\n\nMembers.", "## Pwy a effeithiwyd?\n\nAelodau.")
    assert "1 questions" in portal("incident", "faq", "inc-2026", *faq, by=new_staff())
    assert one(IncidentQuestion, incident_id=incident_id).question == "Who was affected?"

    guidance = markdown(tmp_path, "ni", "Register with Cifas.", "Cofrestrwch gyda Cifas.")
    portal("incident", "guidance", "inc-2026", "ni_number", *guidance, by=new_staff())
    assert "Cifas" in one(IncidentGuidance, incident_id=incident_id).guidance

    portal("incident", "unpublish", "inc-2026", by=new_staff())
    assert not one(Incident, code="inc-2026").published
    assert "inc-2026" in portal("incident", "list")


def test_every_staff_verb_works_for_a_proved_admin_in_a_new_process(demo: None) -> None:
    listed = portal("staff", "list", by=new_staff())
    assert "admin-" in listed and "@example.org" in listed

    out = portal("create-staff", "--email", "newcomer@example.org", "--role", "agent", by=new_staff())
    assert "/staff/enrol/" in out
    assert one(StaffUser, email="newcomer@example.org").role == "agent"

    viewer = new_staff(Role.AGENT)
    portal("staff", "set-role", "--email", viewer.email, "--role", "supervisor", by=new_staff())
    assert one(StaffUser, email=viewer.email).role == "supervisor"

    portal("staff", "reset-second-factor", viewer.email, by=new_staff())
    assert not one(StaffUser, email=viewer.email).enrolled

    portal("staff", "set-branch", viewer.email, "gwent", by=new_staff())
    assert one(Branch, id=one(StaffUser, email=viewer.email).branch_id).code == "gwent"

    assert "sessions of" in portal("staff", "end-sessions", "--email", viewer.email, by=new_staff())
    assert audited("staff.sessions_ended")

    portal("staff", "deactivate", "--email", viewer.email, by=new_staff())
    assert not one(StaffUser, email=viewer.email).active


def test_every_campaign_verb_and_the_stop_switch_work_for_a_proved_admin_in_a_new_process(demo: None) -> None:
    author = new_staff()
    out = portal("campaign", "create", "--incident", "hq-2019", by=author)
    campaign_id = int(out.split("campaign ", 1)[1].split()[0])
    assert one(Campaign, id=campaign_id).status == "draft"

    approver = new_staff()
    assert f"approved by {approver.email}" in portal("campaign", "approve", str(campaign_id), by=approver)
    portal("campaign", "send", str(campaign_id), "--at", "2099-01-01T09:00:00+00:00", by=new_staff())
    assert one(Campaign, id=campaign_id).status == "scheduled"
    portal("campaign", "pause", str(campaign_id), by=new_staff())
    assert one(Campaign, id=campaign_id).status == "paused"
    portal("campaign", "resume", str(campaign_id), by=new_staff())
    assert one(Campaign, id=campaign_id).status == "scheduled"
    portal("campaign", "cancel", str(campaign_id), by=new_staff())
    assert one(Campaign, id=campaign_id).status == "cancelled"

    stopper = new_staff(Role.SUPERVISOR)
    assert "all sending stopped" in portal("stop-all", by=stopper)
    assert one(SendingSwitch).stopped
    assert "sending resumed" in portal("resume-all", by=new_staff())
    assert not one(SendingSwitch).stopped

    assert "audit trail intact" in portal("audit", "verify")
    trail = portal("audit", "show", "--who", approver.email)
    assert "campaign.approve" in trail and f"campaign:{campaign_id}" in trail
    assert [actor for actor, _ in audited("sending.stop_all")] == [stopper.email]
