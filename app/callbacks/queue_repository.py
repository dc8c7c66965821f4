"""Queries of the helpline queue: claiming the next request, leases, attempts and the counts staff see."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update

from app.callbacks.attempts import CallbackAttempt
from app.callbacks.models import CallbackRequest, CallbackStatus
from app.kit.repository import Repository
from app.members.models import Member

C = CallbackRequest
A = CallbackAttempt
WAITING, CLAIMED = CallbackStatus.WAITING.value, CallbackStatus.CLAIMED.value


def offered(now: datetime) -> Any:
    """Waiting, its window started and any retry gap over: what "take next" may hand out."""
    return and_(C.status == WAITING, C.window_start <= now,
                or_(C.next_attempt_at.is_(None), C.next_attempt_at <= now))


class QueueRepository(Repository[CallbackRequest]):
    model = CallbackRequest

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def release_expired(self, now: datetime) -> int:
        """Claims whose lease ran out go back to waiting (rows another transaction holds are left to it)."""
        expired = select(C.id).where(C.status == CLAIMED, C.lease_until < now)
        if self._postgres:
            expired = expired.with_for_update(skip_locked=True)
        stmt = (update(C).where(C.id.in_(expired.scalar_subquery()), C.status == CLAIMED, C.lease_until < now)
                .values(status=WAITING, claimed_by=None, lease_until=None, claimed_at=None, updated_at=now)
                .execution_options(synchronize_session=False))
        return self.session.execute(stmt).rowcount or 0

    def held_by(self, staff_id: int, now: datetime) -> CallbackRequest | None:
        """The request this agent holds on a live lease, if any."""
        return self.session.execute(select(C).where(C.status == CLAIMED, C.claimed_by == staff_id,
                                                    C.lease_until >= now).limit(1)).scalars().first()

    def claim_next(self, *, staff_id: int, now: datetime, lease_until: datetime) -> int | None:
        """Claim the first offered request by priority, due time and id; its id, or None if none is offered.

        PostgreSQL: one statement, the candidate locked with SKIP LOCKED so agents never wait on each other.
        SQLite (one writer, no row locks): pick a candidate, then a guarded update that must change one row.
        """
        order = (C.priority, C.due_at, C.id)
        values = {"status": CLAIMED, "claimed_by": staff_id, "lease_until": lease_until, "claimed_at": now,
                  "updated_at": now}
        if self._postgres:
            pick = select(C.id).where(offered(now)).order_by(*order).limit(1).with_for_update(skip_locked=True)
            stmt = (update(C).where(C.id == pick.scalar_subquery()).values(**values).returning(C.id)
                    .execution_options(synchronize_session=False))
            return self.session.execute(stmt).scalar_one_or_none()
        for _ in range(5):
            candidate = self.session.execute(select(C.id).where(offered(now)).order_by(*order).limit(1)).scalar()
            if candidate is None:
                return None
            if self.claim_one(candidate, staff_id=staff_id, now=now, lease_until=lease_until):
                return candidate
        return None

    def claim_one(self, request_id: int, *, staff_id: int, now: datetime, lease_until: datetime) -> bool:
        """Claim this request if it is still offered (a guarded update: True when it changed the row)."""
        stmt = (update(C).where(C.id == request_id, offered(now))
                .values(status=CLAIMED, claimed_by=staff_id, lease_until=lease_until, claimed_at=now,
                        updated_at=now).execution_options(synchronize_session=False))
        return (self.session.execute(stmt).rowcount or 0) == 1

    def guarded(self, request_id: int, *, where: Sequence[Any], values: dict[str, Any]) -> bool:
        """Change one request only if it still matches `where`; True when it did."""
        stmt = (update(C).where(C.id == request_id, *where).values(**values)
                .execution_options(synchronize_session=False))
        return (self.session.execute(stmt).rowcount or 0) == 1

    def waiting_list(self, now: datetime, limit: int) -> Sequence[CallbackRequest]:
        """Open requests an agent may see in the queue: offered ones first (by priority, due), then later ones."""
        stmt = (select(C).where(C.status == WAITING)
                .order_by(case((offered(now), 0), else_=1), C.priority, C.due_at, C.id).limit(limit))
        return self.list(stmt)

    def depth_by_priority(self, now: datetime) -> dict[int, int]:
        rows = self.session.execute(select(C.priority, func.count()).where(offered(now)).group_by(C.priority))
        return {int(p): int(n) for p, n in rows}

    def counts(self, now: datetime) -> dict[str, Any]:
        """Offered, not yet due to be offered, claimed, overdue, and the oldest offered request's creation."""
        row = self.session.execute(select(
            func.count().filter(offered(now)),
            func.count().filter(C.status == WAITING, ~offered(now)),
            func.count().filter(C.status == CLAIMED),
            func.count().filter(C.status.in_((WAITING, CLAIMED)), C.due_at < now),
            func.min(C.created_at).filter(offered(now)),
        )).one()
        return {"waiting": row[0], "later": row[1], "claimed": row[2], "overdue": row[3], "oldest": row[4]}

    def per_branch(self, now: datetime, *, branch_id: int | None = None) -> list[tuple[int | None, str, int]]:
        """(branch id, status or 'overdue', count) of open requests, by the member's branch (None: no member)."""
        status = case((and_(C.status.in_((WAITING, CLAIMED)), C.due_at < now), "overdue"), else_=C.status)
        stmt = (select(Member.branch_id, status, func.count()).select_from(C)
                .outerjoin(Member, Member.id == C.member_id)
                .where(C.status.in_((WAITING, CLAIMED))).group_by(Member.branch_id, status))
        if branch_id is not None:
            stmt = stmt.where(Member.branch_id == branch_id)
        return [(b, s, int(n)) for b, s, n in self.session.execute(stmt)]

    def closed_since(self, since: datetime, *, branch_id: int | None = None) -> list[tuple[str, int]]:
        """(closed reason, count) of requests closed since then (of one branch's members, if given)."""
        stmt = (select(C.closed_reason, func.count()).select_from(C)
                .where(C.status == CallbackStatus.CLOSED.value, C.closed_at >= since).group_by(C.closed_reason))
        if branch_id is not None:
            stmt = stmt.join(Member, Member.id == C.member_id).where(Member.branch_id == branch_id)
        return [(r or "", int(n)) for r, n in self.session.execute(stmt)]

    def claimed_list(self) -> Sequence[CallbackRequest]:
        return self.list(select(C).where(C.status == CLAIMED).order_by(C.lease_until))

    def attempts_of(self, request_id: int) -> Sequence[CallbackAttempt]:
        return self.session.execute(select(A).where(A.request_id == request_id).order_by(A.id)).scalars().all()

    def earlier_calls(self, request: CallbackRequest, *, limit: int) -> list[tuple[CallbackAttempt, str, str]]:
        """(call, its request's reference, the agent's email): calls for this request and for any earlier one of
        the same member or phone, newest first."""
        from app.auth.models import StaffUser

        same = or_(C.id == request.id, C.phone_index == request.phone_index)
        if request.member_id is not None:
            same = or_(same, C.member_id == request.member_id)
        stmt = (select(A, C.reference, StaffUser.email).join(C, C.id == A.request_id)
                .join(StaffUser, StaffUser.id == A.staff_id).where(same).order_by(A.made_at.desc(), A.id.desc())
                .limit(limit))
        return [(a, ref, email) for a, ref, email in self.session.execute(stmt)]

    def per_agent_since(self, since: datetime) -> list[tuple[int, str, int]]:
        """(staff id, outcome, count) of calls made since then."""
        stmt = select(A.staff_id, A.outcome, func.count()).where(A.made_at >= since).group_by(A.staff_id, A.outcome)
        return [(s, o, int(n)) for s, o, n in self.session.execute(stmt)]

    def add_attempt(self, attempt: CallbackAttempt) -> CallbackAttempt:
        self.session.add(attempt)
        self.session.flush()
        return attempt
