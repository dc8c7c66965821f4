from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from app.branches.models import Branch
from app.kit.repository import Repository


class BranchRepository(Repository[Branch]):
    model = Branch

    def ordered(self) -> Sequence[Branch]:
        return self.list(select(Branch).order_by(Branch.name))
