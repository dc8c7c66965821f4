"""Readers of the incident pages never wait for a writer: a campaign sending on the embedded default holds
SQLite's write lock for whole chunks, and the public pages must still answer meanwhile."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db import create_db_engine, default_session_factory, session_scope


def test_the_incident_pages_answer_while_another_connection_is_writing(fresh_database: str) -> None:
    from app.demo.incident import write_demo_incident
    from app.main import create_app

    with session_scope(default_session_factory()) as session:
        write_demo_incident(session, code="hq-2019")
    writer = create_db_engine(fresh_database).connect()
    try:
        writer.begin()  # on SQLite the engine takes the write lock here (BEGIN IMMEDIATE)
        writer.execute(text("UPDATE incidents SET title = title"))
        with TestClient(create_app(run_embedded_worker=False)) as client:
            for path in ("/", "/?lang=cy", "/updates/hq-2019/1", "/updates.atom"):
                assert client.get(path).status_code == 200, path
    finally:
        writer.rollback()
        writer.close()
