"""Queries over verification challenges."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from app.kit.repository import Repository
from app.lookup.models import ChallengeStatus, VerificationChallenge

V = VerificationChallenge


class ChallengeRepository(Repository[VerificationChallenge]):
    model = VerificationChallenge

    def by_token_hash(self, token_hash: str, *, lock: bool = False) -> VerificationChallenge | None:
        stmt = select(V).where(V.token_hash == token_hash)
        if lock:
            stmt = stmt.with_for_update()
        return self.get_one_or_none(stmt)

    def supersede_live(self, member_id: int, *, keep_id: int, now: datetime) -> int:
        """One live code per member: every other code sent to this member stops working."""
        result = self.session.execute(
            update(V).where(V.member_id == member_id, V.id != keep_id, V.status == ChallengeStatus.SENT,
                            V.expires_at > now)
            .values(status=ChallengeStatus.SUPERSEDED))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def pending_before(self, before: datetime, now: datetime, limit: int = 500) -> list[int]:
        """Checks whose lookup job the queue lost: still pending a while after they were made."""
        return list(self.session.execute(
            select(V.id).where(V.status == ChallengeStatus.PENDING, V.last_sent_at < before, V.expires_at > now)
            .order_by(V.id).limit(limit)).scalars())
