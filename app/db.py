"""Database: declarative base, engine and session factories, the request session dependency."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer keys that are 64-bit on PostgreSQL and the rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow, nullable=False)


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, open transactions, so savepoints and DDL are transactional.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock up front: two deferred transactions upgrading to writers deadlock. A
            # transaction declared read-only (see `read_only`) takes none: in WAL mode it reads a snapshot
            # and waits for no writer, so `campaign status` answers while senders hold the write lock.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


READ_ONLY = "portal_read_only"


def read_only(session: Session) -> None:
    """Declare that `session`'s next transaction only reads (call before its first statement).

    On SQLite it then begins deferred instead of taking the write lock; elsewhere nothing changes.
    """
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite" and not session.in_transaction():
        session.connection(execution_options={READ_ONLY: True})


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


SessionFactory = Callable[[], Session]


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    # A flush sorts every mapped table by its foreign keys, so each one's target must be loaded: a process
    # that imported only a few domains (a command) would fail on its first write (staff_users -> branches).
    import app.models  # noqa: F401

    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: SessionFactory) -> Iterator[Session]:
    """One transaction for a task or a command: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_engines: dict[str, Engine] = {}


def default_session_factory() -> sessionmaker[Session]:
    """The process-wide session factory for the configured database (web, workers, commands)."""
    from app.config import get_settings

    settings = get_settings()
    engine = _engines.get(settings.DATABASE_URL)
    if engine is None:
        engine = _engines[settings.DATABASE_URL] = create_db_engine(settings.DATABASE_URL)
    return create_session_factory(engine)


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    from app.config import ROOT

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logging"] = False
    if url:
        config.attributes["url"] = url
    return config


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Bring the database schema to `revision` (the latest by default)."""
    if revision == "head" and _at_head(url):
        return  # every command migrates first; an up-to-date database should not cost it a full Alembic run
    from alembic import command

    command.upgrade(alembic_config(url), revision)


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _script_heads() -> set[str] | None:
    """The head revisions, read from the migration files' `revision` lines without loading Alembic.

    None when a file does not look as Alembic writes it; the caller then lets Alembic decide.
    """
    from app.config import ROOT

    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else list(down or ()))
    return (revisions - parents) or None


def _at_head(url: str | None) -> bool:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from app.config import get_settings

    heads = _script_heads()
    if heads is None:
        return False
    engine = create_db_engine(url or get_settings().DATABASE_URL)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})  # every command asks this: it must not wait for writers
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:  # no alembic_version yet: a new database
        return False
    finally:
        engine.dispose()  # leave no pooled connection behind (a test may drop this database next)
    return current == heads
