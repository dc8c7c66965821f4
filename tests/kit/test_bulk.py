"""COPY text formatting: what PostgreSQL reads back must be exactly what was written."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, Table, Text, select
from sqlalchemy.orm import Session

from app.kit.bulk import copy_text, insert_new


def test_values_are_escaped_and_typed_for_copy() -> None:
    when = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    rows = [
        {"n": 1, "flag": True, "s": "tab\there", "b": b"\x00\xff", "j": {"a": 1}, "t": when, "x": None},
        {"n": 1, "flag": False, "s": "back\\slash\nnew", "b": None, "j": [1], "t": when, "x": "plain"},
    ]
    assert copy_text(rows, list(rows[0])) == (
        "1\tt\ttab\\there\t\\\\x00ff\t{\"a\": 1}\t2026-11-25T21:00:00+00:00\t\\N\n"
        "1\tf\tback\\\\slash\\nnew\t\\N\t[1]\t2026-11-25T21:00:00+00:00\tplain\n"
    )


def test_a_column_mixing_booleans_and_integers_keeps_each_apart() -> None:
    rows = [{"v": True}, {"v": 1}, {"v": 1.0}, {"v": False}, {"v": 0}]
    assert copy_text(rows, ["v"]) == "t\n1\n1.0\nf\n0\n"


def test_inserted_rows_read_back_exactly_and_repeats_are_skipped(session: Session) -> None:
    table = Table("bulk_check", MetaData(), Column("id", Integer, primary_key=True), Column("s", Text),
                  Column("b", LargeBinary), Column("at", DateTime(timezone=True)), Column("x", Text, nullable=True))
    table.create(session.connection())
    when = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    rows = [{"id": i, "s": f"a\tb\\c\nd\r{i}", "b": bytes([i, 255 - i]), "at": when, "x": None if i % 2 else "é"}
            for i in range(5)]
    assert sorted(insert_new(session, table, rows, conflict=["id"], returning="id")) == [0, 1, 2, 3, 4]
    assert insert_new(session, table, rows[:2] + [{**rows[0], "id": 9}], conflict=["id"], returning="id") == [9]
    back = session.execute(select(table).order_by(table.c.id)).all()
    expected = [(r["id"], r["s"], r["b"], r["at"], r["x"]) for r in [*rows, {**rows[0], "id": 9}]]
    assert [(r.id, r.s, r.b, r.at.astimezone(UTC) if r.at.tzinfo else r.at.replace(tzinfo=UTC), r.x) for r in back] \
        == expected
