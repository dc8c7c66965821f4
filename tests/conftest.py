"""Test set-up: a real database (PostgreSQL or SQLite, chosen by PORTAL_TEST_DB), migrated once.

Each test runs in a transaction that is rolled back; code under test that commits only releases
a savepoint. Tests that need data other processes can see use `fresh_database`, a database cloned
from the migrated template.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BACKEND = os.environ.get("PORTAL_TEST_DB", "postgresql")
PG_ADMIN_URL = os.environ.get("PORTAL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
# The process id keeps two test runs on one machine (two checkouts, say) out of each other's databases.
WORKER = f'{os.environ.get("PYTEST_XDIST_WORKER", "main")}_{os.getpid()}'

TMP = Path(tempfile.mkdtemp(prefix=f"portal-tests-{WORKER}-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)

os.environ["PORTAL_ENV"] = "test"
os.environ.pop("PORTAL_BROKER_URL", None)
for key in [k for k in os.environ if k.startswith(("PORTAL_SENDGRID", "PORTAL_TWILIO"))]:
    os.environ.pop(key)
os.environ["PORTAL_DEMO_ON_FIRST_START"] = "false"


def _claim_redis_db() -> None:
    """Give this run a Redis database of its own (2-12), so two runs on one machine never share a broker: a
    worker of one would take the other's jobs, and each run flushes its database. Held until the run ends."""
    if "PORTAL_TEST_REDIS_DB" in os.environ:
        return
    try:
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
        for db in range(2, 13):
            key = f"portal-tests:redis-db:{db}"
            if client.set(key, os.getpid(), nx=True, ex=6 * 3600):
                os.environ["PORTAL_TEST_REDIS_DB"] = str(db)
                atexit.register(lambda key=key: client.delete(key))
                return
    except Exception:  # no Redis here: the tests that need it say so themselves
        return


_claim_redis_db()

# The environment above must be set before these imports read it.
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import Connection, make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

pytest_plugins = ["tests.fakes.fixtures"]


def _pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _pg_admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def create_database(name: str, *, template: str | None = None) -> str:
    """A new empty (or cloned) database; returns its URL."""
    if BACKEND == "sqlite":
        path = TMP / f"{name}.db"
        if template:
            shutil.copy(TMP / f"{template}.db", path)
        return f"sqlite:///{path}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return _pg_url(name)


def drop_database(name: str) -> None:
    if BACKEND == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            (TMP / f"{name}.db{suffix}").unlink(missing_ok=True)
    else:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


TEMPLATE_DB = f"portal_test_{WORKER}_template"
TEST_DB = f"portal_test_{WORKER}"


def use_database(url: str) -> None:
    """Point the settings (and so the app, commands and tasks) at `url`."""
    from app.config import get_settings

    os.environ["PORTAL_DATABASE_URL"] = url
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    from app.db import migrate

    template_url = create_database(TEMPLATE_DB)
    migrate(template_url)
    if BACKEND == "postgresql":
        # A template database cannot have open connections while it is cloned.
        _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{TEMPLATE_DB}'")
    url = create_database(TEST_DB, template=TEMPLATE_DB)
    use_database(url)
    yield url
    drop_database(TEST_DB)
    drop_database(TEMPLATE_DB)
    shutil.rmtree(TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def engine(database_url: str):  # type: ignore[no-untyped-def]
    from app.db import create_db_engine

    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine) -> Iterator[Connection]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    yield s
    s.close()


@pytest.fixture
def app(session_factory: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    from app.main import create_app

    application = create_app(run_embedded_worker=False)
    application.state.session_factory = session_factory
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """A migrated database of its own, committed to for real, and the settings pointed at it."""
    name = f"portal_t_{WORKER}_{uuid.uuid4().hex[:8]}"
    url = create_database(name, template=TEMPLATE_DB)
    use_database(url)
    from app import db

    yield url
    engine = db._engines.pop(url, None)
    if engine is not None:
        engine.dispose()
    use_database(database_url)
    drop_database(name)
