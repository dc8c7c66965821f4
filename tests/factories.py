"""Plain factory functions for tests."""

from __future__ import annotations

import io
from itertools import count

from sqlalchemy.orm import Session

from app.members import imports

_numbers = count(1)
MEMBER_HEADER = ",".join(imports.MEMBER_COLUMNS)


def member_csv(*rows: str, header: str = MEMBER_HEADER, newline: str = "\n") -> io.BytesIO:
    return io.BytesIO((newline.join([header, *rows]) + newline).encode())


def member_row(
    number: str | None = None, *, first: str = "Ann", last: str = "Jones", email: str | None = None,
    phone: str = "07700 900123", branch: str = "kent", rank: str = "Constable", lang: str = "",
) -> str:
    number = f"T{next(_numbers):06d}" if number is None else number
    email = f"{number.lower()}@kent.example.org" if email is None else email
    return ",".join([number, first, last, email, phone, branch, rank, lang])


def import_members(session: Session, *rows: str, **kwargs: object) -> imports.ImportSummary:
    return imports.import_members(session, source=member_csv(*rows), actor="test", **kwargs)  # type: ignore[arg-type]
