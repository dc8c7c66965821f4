"""Branches: read-only reference data seeded by migration."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.branches.models import Branch
from app.branches.repository import BranchRepository


def list_branches(session: Session) -> Sequence[Branch]:
    """All branches, by name."""
    return BranchRepository(session).ordered()


def branches_by_code(session: Session) -> dict[str, Branch]:
    """Branch per code, for validating imports."""
    return {b.code: b for b in BranchRepository(session).ordered()}
