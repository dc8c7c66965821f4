from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.auth.models import LoginThrottle, StaffDevice, StaffUser
from app.kit.repository import Repository


class StaffRepository(Repository[StaffUser]):
    model = StaffUser

    def by_email(self, email: str) -> StaffUser | None:
        return self.get_one_or_none(select(StaffUser).where(func.lower(StaffUser.email) == email.lower()))

    def by_enrolment_token_hash(self, token_hash: str) -> StaffUser | None:
        return self.get_one_or_none(select(StaffUser).where(StaffUser.enrolment_token_hash == token_hash))

    def listing(self) -> Sequence[StaffUser]:
        return self.list(select(StaffUser).order_by(StaffUser.active.desc(), func.lower(StaffUser.email)))

    def active_admins(self) -> int:
        return self.session.execute(select(func.count()).select_from(StaffUser).where(
            StaffUser.active.is_(True), StaffUser.role == "admin")).scalar_one()

    def claim_totp_step(self, staff_id: int, step: int) -> bool:
        """Record `step` as used unless it, or a later one, already was: one winner among concurrent uses."""
        result = self.session.execute(
            update(StaffUser)
            .where(StaffUser.id == staff_id, or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1  # type: ignore[attr-defined]


class ThrottleRepository(Repository[LoginThrottle]):
    model = LoginThrottle

    def find(self, scope: str, key: str) -> LoginThrottle | None:
        return self.get_one_or_none(select(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key))

    def lock_or_create(self, scope: str, key: str) -> LoginThrottle:
        stmt = select(LoginThrottle).where(LoginThrottle.scope == scope, LoginThrottle.key == key).with_for_update()
        row = self.get_one_or_none(stmt)
        if row is not None:
            return row
        try:
            with self.session.begin_nested():
                row = self.add(LoginThrottle(scope=scope, key=key, failures=0), flush=True)
            return row
        except IntegrityError:
            found = self.get_one_or_none(stmt)
            assert found is not None
            return found


class DeviceRepository(Repository[StaffDevice]):
    model = StaffDevice

    def by_token_hash(self, token_hash: str) -> StaffDevice | None:
        return self.get_one_or_none(select(StaffDevice).where(StaffDevice.token_hash == token_hash))

    def delete_for(self, staff_id: int) -> int:
        result = self.session.execute(delete(StaffDevice).where(StaffDevice.staff_id == staff_id))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def delete_stale(self, staff_id: int, *, keep: int, now: datetime) -> None:
        """Forget this person's expired devices, and all but the `keep` most recently used."""
        kept = select(StaffDevice.id).where(StaffDevice.staff_id == staff_id, StaffDevice.expires_at > now) \
            .order_by(StaffDevice.last_used_at.desc(), StaffDevice.id.desc()).limit(keep)
        self.session.execute(delete(StaffDevice).where(StaffDevice.staff_id == staff_id,
                                                       StaffDevice.id.not_in(list(self.session.scalars(kept)))))
