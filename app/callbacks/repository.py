"""Queries over callback requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select

from app.callbacks.models import OPEN_STATUSES, CallbackRequest, CallbackText
from app.kit.repository import Repository

C = CallbackRequest


class CallbackRepository(Repository[CallbackRequest]):
    model = CallbackRequest

    def by_reference(self, reference: str, *, lock: bool = False) -> CallbackRequest | None:
        stmt = select(C).where(C.reference == reference)
        if lock:
            stmt = stmt.with_for_update()
        return self.get_one_or_none(stmt)

    def open_for_member(self, member_id: int) -> CallbackRequest | None:
        return self.get_one_or_none(select(C).where(C.member_id == member_id, C.status.in_(OPEN_STATUSES)))

    def open_for_phone(self, phone_index: str) -> CallbackRequest | None:
        return self.get_one_or_none(select(C).where(C.phone_index == phone_index, C.status.in_(OPEN_STATUSES)))

    def latest_for_member(self, member_id: int) -> CallbackRequest | None:
        return self.get_one_or_none(select(C).where(C.member_id == member_id).order_by(C.id.desc()).limit(1))

    @staticmethod
    def _members(member_id: int, phone_index: str | None) -> ColumnElement[bool]:
        """The member's own requests, and those made before signing in with the phone on file for them."""
        own = C.member_id == member_id
        if phone_index is None:
            return own
        return or_(own, and_(C.member_id.is_(None), C.phone_index == phone_index))

    def open_for_member_or_phone(self, member_id: int, phone_index: str | None) -> CallbackRequest | None:
        stmt = select(C).where(self._members(member_id, phone_index), C.status.in_(OPEN_STATUSES))
        return self.get_one_or_none(stmt.order_by(C.member_id.is_(None), C.id.desc()).limit(1))

    def latest_for_member_or_phone(self, member_id: int, phone_index: str | None) -> CallbackRequest | None:
        stmt = select(C).where(self._members(member_id, phone_index))
        return self.get_one_or_none(stmt.order_by(C.id.desc()).limit(1))

    def reference_taken(self, reference: str) -> bool:
        return self.session.execute(select(C.id).where(C.reference == reference)).first() is not None


T = CallbackText


class CallbackTextRepository(Repository[CallbackText]):
    model = CallbackText

    def sent_to_phone_since(self, phone_index: str, since: datetime) -> int:
        stmt = select(func.count()).where(T.phone_index == phone_index, T.sent_at >= since)
        return int(self.session.execute(stmt).scalar_one())

    def sent_to_unknown_since(self, since: datetime) -> int:
        stmt = select(func.count()).where(T.on_file.is_(False), T.sent_at >= since)
        return int(self.session.execute(stmt).scalar_one())

    def delete_sent_before(self, cutoff: datetime) -> int:
        return int(self.session.execute(delete(T).where(T.sent_at < cutoff)).rowcount or 0)
