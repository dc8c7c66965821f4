from __future__ import annotations

from sqlalchemy import func, select

from app.auth.models import StaffUser
from app.kit.repository import Repository


class StaffRepository(Repository[StaffUser]):
    model = StaffUser

    def by_email(self, email: str) -> StaffUser | None:
        return self.get_one_or_none(select(StaffUser).where(func.lower(StaffUser.email) == email.lower()))
