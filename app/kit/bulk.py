"""Bulk inserts that skip rows already present, fast on both databases.

PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING. A big
multi-row INSERT with bind parameters costs more to build and parse than to run. SQLite: one cached
statement run as executemany.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session


def _copy_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


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
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_copy_value(row[c]) for c in columns])
    result = conn.execute(text(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {returning}"))
    return list(result.scalars())
