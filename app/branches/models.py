from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Country(StrEnum):
    ENGLAND = "england"
    WALES = "wales"


class Branch(Base):
    """One local branch per territorial police force."""

    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(16))
    default_language: Mapped[str] = mapped_column(String(2))
