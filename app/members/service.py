"""Members as other domains see them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.members.repository import MemberRepository


def count_members(session: Session) -> int:
    """How many members we hold."""
    return MemberRepository(session).count()
