"""`portal incident ...`: operators write an incident's public content from Markdown files, as a proved admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.cli import app
from app.db import default_session_factory, session_scope
from tests.operators import Operator, operators_from_demo

from .conftest import INCIDENT_CY, INCIDENT_EN, visible_text

runner = CliRunner()
STAFF: dict[str, Operator] = {}


def portal(*argv: str, code: int = 0, by: str | None = None) -> str:
    if by is not None:
        argv = (*argv, "--by", by)
    result = runner.invoke(app, list(argv), input=STAFF[by].proof() if by in STAFF else None)
    assert result.exit_code == code, result.output
    return result.output


def files(tmp_path: Path, name: str, en: str, cy: str) -> list[str]:
    (tmp_path / f"{name}.en.md").write_text(en, "utf-8")
    (tmp_path / f"{name}.cy.md").write_text(cy, "utf-8")
    return ["--en", str(tmp_path / f"{name}.en.md"), "--cy", str(tmp_path / f"{name}.cy.md")]


@pytest.fixture
def operators(fresh_database: str) -> None:
    STAFF.clear()
    STAFF.update(operators_from_demo(portal("demo", "--members", "10")))


def public_page(path: str = "/") -> str:
    from app.main import create_app

    with TestClient(create_app(run_embedded_worker=False)) as client:
        answer = client.get(path)
        assert answer.status_code == 200
        return visible_text(answer.text)


def test_an_admin_writes_publishes_and_updates_an_incident(operators: None, tmp_path: Path) -> None:
    out = portal("incident", "create", "inc-2026", *files(tmp_path, "incident", INCIDENT_EN, INCIDENT_CY),
                 "--discovered", "2026-11-30", "--helpline-hours", "9am to 5pm on weekdays",
                 "--helpline-hours-cy", "rhwng 9am a 5pm ar ddyddiau'r wythnos", by="admin@example.org")
    assert "created" in out and "draft" in out
    assert "Attack on our systems" not in public_page()
    portal("incident", "publish", "inc-2026", by="approver@example.org")
    out = portal("incident", "update", "inc-2026",
                 *files(tmp_path, "update", "# Helpline extended\n\nNow open **weekends**.",
                        "# Estyn y llinell gymorth\n\nAr agor ar **benwythnosau** nawr."),
                 "--at", "2026-12-01T09:00:00+00:00", by="admin@example.org")
    assert "/updates/inc-2026/1" in out
    portal("incident", "faq", "inc-2026",
           *files(tmp_path, "faq", "## Who was affected?\n\nMembers.", "## Pwy a effeithiwyd?\n\nAelodau."),
           by="approver@example.org")
    page = public_page()
    for shown in ("Attack on our systems", "We are open 9am to 5pm on weekdays.", "Helpline extended",
                  "Now open weekends.", "Who was affected?"):
        assert shown in page, shown
    assert "Estyn y llinell gymorth" in public_page("/updates/inc-2026/1?lang=cy")
    assert "inc-2026" in portal("incident", "list")
    with session_scope(default_session_factory()) as session:
        events = session.execute(select(AuditEvent.action, AuditEvent.actor)
                                 .where(AuditEvent.action.like("incident.%"), AuditEvent.actor != "demo")
                                 .order_by(AuditEvent.id)).all()
    assert [tuple(e) for e in events] == [("incident.create", "admin@example.org"),
                                          ("incident.publish", "approver@example.org"),
                                          ("incident.update", "admin@example.org"),
                                          ("incident.faq", "approver@example.org")]


def test_guidance_and_edits_change_the_page(operators: None, tmp_path: Path) -> None:
    portal("incident", "guidance", "hq-2019", "ni_number",
           *files(tmp_path, "ni", "Register with **Cifas**.", "Cofrestrwch gyda **Cifas**."), by="admin@example.org")
    edited = INCIDENT_EN.replace("Attack on our systems", "Cyber attack: what we know")
    portal("incident", "edit", "hq-2019", *files(tmp_path, "incident", edited, INCIDENT_CY), by="admin@example.org")
    page = public_page()
    assert "Register with Cifas." in page and "Cyber attack: what we know" in page


def test_a_mistake_in_a_file_is_reported_before_anyone_proves_who_they_are(operators: None, tmp_path: Path) -> None:
    broken = files(tmp_path, "incident", "# Title only\n", INCIDENT_CY)
    out = portal("incident", "create", "inc-x", *broken, by="nobody@example.org", code=1)
    assert "exactly three" in out and "incident.en.md" in out
    out = portal("incident", "faq", "hq-2019", *files(tmp_path, "faq", "## Q\n\nA", "## C\n\nA\n\n## D\n\nB"),
                 by="admin@example.org", code=1)
    assert "pair up" in out


def test_only_a_proved_admin_can_change_what_the_public_reads(operators: None, tmp_path: Path) -> None:
    update = files(tmp_path, "u", "# Unproved notice\n\nx", "# Hysbysiad heb ei brofi\n\nx")
    args = ["incident", "update", "hq-2019", *update]
    out = portal(*args, by="agent@example.org", code=2)
    assert "refused" in out and "needs admin" in out
    result = runner.invoke(app, [*args, "--by", "admin@example.org"], input="wrong password\n000000\n")
    assert result.exit_code == 2 and "refused" in result.output
    assert runner.invoke(app, ["incident", "update", "hq-2019", *args[3:]]).exit_code == 2, "--by is required"
    assert "Unproved notice" not in public_page()
