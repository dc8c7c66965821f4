"""Bulk inserts that skip rows already present, fast on both databases.

PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING. A big
multi-row INSERT with bind parameters costs more to build and parse than to run. SQLite: one cached
statement run as executemany.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

# What COPY's text format escapes; most values contain none of it, and a search is far cheaper than a
# translate() whose replacements are two characters long (a per-character slow path in CPython).
_SPECIAL = re.compile(r"[\\\t\n\r]")


def _escape(text: str) -> str:
    if _SPECIAL.search(text) is None:
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_text(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()  # bytea's hex form, its backslash escaped for COPY
    if isinstance(value, dict | list):
        value = json.dumps(value)
    return _escape(str(value))


def _column_text(values: list[Any]) -> list[str]:
    """A column in COPY's text format; each distinct value is formatted once (most columns repeat)."""
    try:
        distinct = set(values)
    except TypeError:  # JSON values
        return [_copy_text(v) for v in values]
    kinds = set(map(type, values)) - {type(None)}  # of all values: the set above has merged True with 1
    # True == 1 and 1 == 1.0 would share one entry; strings and their enums format alike.
    if len(kinds) > 1 and not all(issubclass(k, str) for k in kinds):
        return [_copy_text(v) for v in values]
    memo = {v: _copy_text(v) for v in distinct}
    return [memo[v] for v in values]


def copy_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as the body of a `COPY ... FROM STDIN` in text format."""
    columns_text = [_column_text([row[c] for row in rows]) for c in columns]
    return "\n".join(map("\t".join, zip(*columns_text, strict=True))) + "\n"


def copy_rows(session: Session, table_name: str, rows: Sequence[dict[str, Any]]) -> None:
    """COPY rows (dicts with the same keys) into a PostgreSQL table in the session's transaction."""
    if not rows:
        return
    columns = list(rows[0].keys())
    raw = session.connection().connection.driver_connection
    # Writing preformatted text is several times faster than adapting each value with write_row().
    with raw.cursor() as cur, cur.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(copy_text(rows, columns))


def insert_new(session: Session, table: Table, rows: Sequence[dict[str, Any]], *, conflict: Sequence[str],
               returning: str) -> list[Any]:
    """Insert the rows whose `conflict` key is not yet present; returns `returning` of those inserted."""
    if not rows:
        return []
    columns = list(rows[0].keys())
    if session.get_bind().dialect.name != "postgresql":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict)).returning(
            table.c[returning])
        return list(session.execute(stmt, list(rows)).scalars())
    stage = f"_stage_{table.name}"
    names = ", ".join(columns)
    conn = session.connection()
    conn.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} AS SELECT {names} FROM {table.name} WITH NO DATA"))
    conn.execute(text(f"TRUNCATE {stage}"))
    copy_rows(session, stage, rows)
    result = conn.execute(text(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {returning}"))
    return list(result.scalars())
