"""The tiny typed repository base: every query in the app lives behind one of these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, Select, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

M = TypeVar("M")


def id_in(session: Session, column: Any, ids: Sequence[int]) -> Any:
    """`column IN ids`; on PostgreSQL as `= ANY(array)`: one parameter, not one per id to render and bind."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(BigInteger())))
    return column.in_(list(ids))


class Repository(Generic[M]):
    model: type[M]

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, id_: Any) -> M | None:
        return self.session.get(self.model, id_)

    def get_one_or_none(self, stmt: Select[tuple[M]]) -> M | None:
        return self.session.execute(stmt).scalars().one_or_none()

    def list(self, stmt: Select[tuple[M]]) -> Sequence[M]:
        return self.session.execute(stmt).scalars().all()

    def all(self) -> Sequence[M]:
        return self.list(select(self.model))

    def add(self, obj: M, *, flush: bool = False) -> M:
        self.session.add(obj)
        if flush:
            self.session.flush()
        return obj
