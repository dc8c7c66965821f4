"""Queries over verification challenges and the browsers' check tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.kit.repository import Repository
from app.lookup.models import CheckToken, VerificationChallenge

V = VerificationChallenge


class ChallengeRepository(Repository[VerificationChallenge]):
    model = VerificationChallenge

    def current(self, identifier_hash: str, *, lock: bool = False) -> VerificationChallenge | None:
        """The identifier's newest challenge: the one every check for it shares."""
        stmt = select(V).where(V.identifier_hash == identifier_hash).order_by(V.id.desc()).limit(1)
        if lock:
            stmt = stmt.with_for_update()
        return self.get_one_or_none(stmt)

    def locked(self, challenge_id: int) -> VerificationChallenge | None:
        return self.get_one_or_none(select(V).where(V.id == challenge_id).with_for_update())

    def asked_before(self, before: datetime, now: datetime, limit: int = 500) -> list[int]:
        """Challenges whose job the queue lost: still asked for a while after they were."""
        return list(self.session.execute(
            select(V.id).where(V.asked_at < before, V.expires_at > now).order_by(V.id).limit(limit)).scalars())


class TokenRepository(Repository[CheckToken]):
    model = CheckToken

    def by_token_hash(self, token_hash: str) -> CheckToken | None:
        return self.get_one_or_none(select(CheckToken).where(CheckToken.token_hash == token_hash))
