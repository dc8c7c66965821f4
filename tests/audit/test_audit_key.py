"""The audit chain is keyed: editing rows is caught, and so is rebuilding the chain without the key."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.audit.models import AuditEvent
from app.config import InsecureSettings, Settings, get_settings
from app.db import alembic_config


def test_production_refuses_a_default_or_short_audit_key() -> None:
    strong = {"SECRET_KEY": "s" * 40, "PII_KEY": "k1:" + "A" * 42 + "Q="}
    with pytest.raises(InsecureSettings, match="PORTAL_AUDIT_KEY"):
        Settings(ENV="production", **strong)
    with pytest.raises(InsecureSettings, match="PORTAL_AUDIT_KEY"):
        Settings(ENV="production", AUDIT_KEY="short", **strong)
    assert Settings(ENV="production", AUDIT_KEY="a" * 40, **strong).ENV == "production"


def _chain(session: Session, n: int) -> list[AuditEvent]:
    return [audit_service.record(session, actor="test", action="thing.done", subject=f"x:{i}", n=i) for i in range(n)]


def test_a_chain_rebuilt_without_the_key_is_named_at_its_first_forged_link(session: Session) -> None:
    events = _chain(session, 4)
    assert audit_service.verify_chain(session).intact
    # Someone with write access to the table edits an event and recomputes every hash after it, the way
    # the chain was hashed before it was keyed (plain SHA-256 over the same fields).
    forged = events[1]
    prev = forged.prev_hash
    for event in events[1:]:
        details = {"n": 99} if event is forged else event.details
        session.execute(update(AuditEvent).where(AuditEvent.id == event.id).values(details=details))
        session.expire(event)
        body = audit_service._body(prev, session.get(AuditEvent, event.id))
        new_hash = hashlib.sha256(body).hexdigest()
        session.execute(update(AuditEvent).where(AuditEvent.id == event.id).values(prev_hash=prev, hash=new_hash))
        prev = new_hash
    session.expire_all()
    assert audit_service.verify_chain(session).first_broken_id == forged.id


def test_a_different_key_does_not_verify(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _chain(session, 2)[0]
    monkeypatch.setenv("PORTAL_AUDIT_KEY", "another key that is long enough to be real")
    get_settings.cache_clear()
    try:
        report = audit_service.verify_chain(session)
        assert not report.intact and report.first_broken_id <= first.id
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_upgrading_keys_the_old_chain_as_far_as_it_verifies(database_url: str) -> None:
    """Revision 0005 re-hashes a plain SHA-256 chain under the key, up to its first broken link."""
    from tests.conftest import create_database, drop_database

    name = f"portal_audit_rekey_{os.getpid()}"
    url = create_database(name)
    try:
        config = alembic_config(url)
        command.upgrade(config, "0004")
        engine = create_engine(url)
        prev = "0" * 64
        with engine.begin() as conn:
            for i in range(5):
                event = AuditEvent(occurred_at=datetime(2026, 11, 30, 10, i, tzinfo=UTC), actor="old",
                                   action="thing.done", subject=f"x:{i}", details={"n": i})
                digest = hashlib.sha256(audit_service._body(prev, event)).hexdigest()
                conn.execute(AuditEvent.__table__.insert().values(
                    occurred_at=event.occurred_at, actor="old", action="thing.done", subject=f"x:{i}",
                    details={"n": i}, prev_hash=prev, hash=digest))
                prev = digest
            # Event 4 was edited under the old scheme; the upgrade must not launder that.
            ids = list(conn.execute(text("SELECT id FROM audit_events ORDER BY id")).scalars())
            conn.execute(update(AuditEvent.__table__).where(AuditEvent.__table__.c.id == ids[3])
                         .values(details={"n": 42}))
        command.upgrade(config, "0005")
        with Session(engine) as session:
            report = audit_service.verify_chain(session)
            assert report.first_broken_id == ids[3] and report.events == 4
            session.execute(update(AuditEvent).where(AuditEvent.id == ids[3]).values(details={"n": 3}))
            session.commit()
            assert audit_service.verify_chain(session).first_broken_id == ids[3], "still the old scheme past it"
            first = session.execute(select(AuditEvent).where(AuditEvent.id == ids[0])).scalar_one()
            assert first.hash != hashlib.sha256(audit_service._body("0" * 64, first)).hexdigest()
        engine.dispose()
    finally:
        drop_database(name)


def test_portal_audit_verify_names_the_first_forged_event(fresh_database: str) -> None:
    from typer.testing import CliRunner

    from app.cli import app
    from app.db import default_session_factory, session_scope

    with session_scope(default_session_factory()) as session:
        ids = [e.id for e in _chain(session, 3)]
    runner = CliRunner()
    assert "audit trail intact" in runner.invoke(app, ["audit", "verify"]).output
    with session_scope(default_session_factory()) as session:
        # A forger with the database but not the key: edits the middle event and recomputes its hash unkeyed.
        event = session.get(AuditEvent, ids[1])
        event.details = {"n": 7}
        session.flush()
        event.hash = hashlib.sha256(audit_service._body(event.prev_hash, event)).hexdigest()
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and f"audit trail broken at event {ids[1]}" in result.output
