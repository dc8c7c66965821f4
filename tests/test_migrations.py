"""Migrations: one head, a clean round trip, and no drift from the models."""

from __future__ import annotations

import os

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from app.db import alembic_config, create_db_engine
from app.models import Base
from tests.conftest import create_database, drop_database


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}"


def test_commands_read_the_same_head_as_alembic() -> None:
    from app.db import _script_heads

    assert _script_heads() == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_a_command_still_migrates_a_database_that_is_behind(database_url: str) -> None:
    from app.db import migrate

    url = create_database(f"portal_migration_behind_{os.getpid()}")
    try:
        command.upgrade(alembic_config(url), "0001")
        migrate(url)
        engine = create_db_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == \
                ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert "deliveries" in inspect(conn).get_table_names()
        engine.dispose()
    finally:
        drop_database(f"portal_migration_behind_{os.getpid()}")


def test_upgrade_downgrade_upgrade_round_trip(database_url: str) -> None:
    url = create_database("portal_migration_roundtrip")
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        engine = create_db_engine(url)
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        engine.dispose()
        command.upgrade(config, "head")
        engine = create_db_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM branches")).scalar_one() == 43
            assert conn.execute(text("SELECT count(*) FROM data_categories")).scalar_one() >= 5
        engine.dispose()
    finally:
        drop_database("portal_migration_roundtrip")


def test_models_and_migrations_agree(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models differ from migrations; add a migration: {diff}"


def test_branches_cover_england_and_wales(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, country, default_language FROM branches")).all()
    assert len(rows) == 43
    welsh = {code for code, country, _ in rows if country == "wales"}
    assert welsh == {"dyfed-powys", "gwent", "north-wales", "south-wales"}
    assert {lang for _, country, lang in rows if country == "wales"} == {"cy"}
    assert "metropolitan" in {code for code, _, _ in rows}
