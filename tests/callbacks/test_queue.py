"""The helpline queue: take next (one claim each, in priority then due order), windows, leases, outcomes,
retry gaps, closing as unreachable with a message to the member, and the supervisor's actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.callbacks import queue
from app.callbacks.attempts import CallbackAttempt, Outcome
from app.callbacks.models import CallbackRequest, Priority
from app.config import get_settings
from app.db import utcnow
from app.errors import Conflict
from app.messages.models import TransactionalMessage
from tests.callbacks.queue_helpers import agent, waiting


def _actions(session: Session, subject: str) -> list[str]:
    return list(session.execute(select(AuditEvent.action).where(AuditEvent.subject == subject)
                                .order_by(AuditEvent.id)).scalars())


def test_take_next_gives_priority_first_then_the_earliest_due(session: Session) -> None:
    now = utcnow()
    normal_early = waiting(session, priority=Priority.NORMAL, due=now - timedelta(hours=5))
    financial_late = waiting(session, priority=Priority.FINANCIAL, due=now + timedelta(hours=3))
    financial_early = waiting(session, priority=Priority.FINANCIAL, due=now + timedelta(hours=1))
    urgent = waiting(session, priority=Priority.URGENT, due=now + timedelta(hours=9))
    order = []
    for n in range(4):
        taker = agent(session, f"a{n}")
        taken = queue.take_next(session, staff_id=taker.id)
        assert taken is not None and taken.claimed_by == taker.id and taken.status == "claimed"
        order.append(taken.id)
    assert order == [urgent.id, financial_early.id, financial_late.id, normal_early.id]
    assert queue.take_next(session, staff_id=agent(session, "late").id) is None


def test_an_agent_holding_a_request_gets_the_same_one_again(session: Session) -> None:
    first, _second = waiting(session), waiting(session)
    me = agent(session)
    assert queue.take_next(session, staff_id=me.id).id == first.id  # type: ignore[union-attr]
    assert queue.take_next(session, staff_id=me.id).id == first.id  # type: ignore[union-attr]
    assert _actions(session, f"callback:{first.id}") == ["callback.claimed"]


def test_a_request_whose_window_has_not_started_is_not_offered(session: Session) -> None:
    waiting(session, start=utcnow() + timedelta(minutes=30))
    assert queue.take_next(session, staff_id=agent(session).id) is None


def test_an_expired_lease_returns_the_request_to_the_queue(session: Session) -> None:
    request = waiting(session)
    quiet, other = agent(session, "quiet"), agent(session, "other")
    assert queue.take_next(session, staff_id=quiet.id).id == request.id  # type: ignore[union-attr]
    assert queue.take_next(session, staff_id=other.id) is None, "a live lease is never handed out twice"
    request.lease_until = utcnow() - timedelta(seconds=1)  # the quiet agent's lease runs out
    session.flush()
    taken = queue.take_next(session, staff_id=other.id)
    assert taken is not None and taken.id == request.id and taken.claimed_by == other.id
    with pytest.raises(Conflict):
        queue.record_outcome(session, staff_id=quiet.id, request_id=request.id, outcome=Outcome.RESOLVED)


def test_the_sweep_releases_expired_claims_by_itself(session: Session) -> None:
    request = waiting(session)
    me = agent(session)
    queue.take_next(session, staff_id=me.id)
    request.lease_until = utcnow() - timedelta(minutes=1)
    session.flush()
    assert queue.release_expired(session) == 1
    session.refresh(request)
    assert request.status == "waiting" and request.claimed_by is None


def test_call_sheet_shows_the_passphrase_and_phone_and_is_audited(session: Session) -> None:
    request = waiting(session, passphrase="green kite", phone="+447700900555")
    me = agent(session)
    queue.take_next(session, staff_id=me.id)
    sheet = queue.call_sheet(session, staff_id=me.id, request_id=request.id)
    assert sheet.passphrase == "green kite" and sheet.phone == "+447700900555"
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "callback.details_viewed")).scalar_one()
    assert event.actor == me.email and "green kite" not in str(event.details)
    with pytest.raises(Conflict):
        queue.call_sheet(session, staff_id=agent(session, "nosy").id, request_id=request.id)


def test_no_answer_waits_the_retry_gap_and_closes_unreachable_after_the_maximum(
        session: Session, session_factory: sessionmaker[Session]) -> None:
    settings = get_settings()
    request = waiting(session, phone="+447700900321")
    me = agent(session)
    for attempt in range(1, settings.CALLBACK_MAX_ATTEMPTS + 1):
        assert queue.take_next(session, staff_id=me.id).id == request.id  # type: ignore[union-attr]
        queue.record_outcome(session, staff_id=me.id, request_id=request.id, outcome=Outcome.NO_ANSWER,
                             notes=f"try {attempt}")
        session.refresh(request)
        if attempt < settings.CALLBACK_MAX_ATTEMPTS:
            assert request.status == "waiting"
            gap = request.next_attempt_at - utcnow()  # type: ignore[operator]
            assert timedelta(minutes=settings.CALLBACK_RETRY_GAP_MINUTES - 1) < gap
            assert queue.take_next(session, staff_id=me.id) is None, "the retry gap is kept"
            request.next_attempt_at = utcnow() - timedelta(seconds=1)  # the gap passes
            session.flush()
    assert request.status == "closed" and request.closed_reason == "unreachable"
    assert request.attempts == settings.CALLBACK_MAX_ATTEMPTS
    assert len(session.execute(select(CallbackAttempt).where(CallbackAttempt.request_id == request.id))
               .scalars().all()) == settings.CALLBACK_MAX_ATTEMPTS
    message = session.execute(select(TransactionalMessage).where(
        TransactionalMessage.kind == "callback_unreachable")).scalar_one()
    assert message.channel == "sms"
    _subject, body = queue.unreachable_message(request, channel="sms")
    assert request.reference in body and "/callback" in body


def test_resolved_closes_and_call_later_comes_back_at_the_members_time(session: Session) -> None:
    me = agent(session)
    done = waiting(session, priority=Priority.URGENT)
    later = waiting(session)
    queue.take_next(session, staff_id=me.id)
    queue.record_outcome(session, staff_id=me.id, request_id=done.id, outcome=Outcome.RESOLVED, notes="all fine")
    session.refresh(done)
    assert done.status == "closed" and done.closed_reason == "resolved" and done.closed_at is not None
    assert queue.take_next(session, staff_id=me.id).id == later.id  # type: ignore[union-attr]
    with pytest.raises(queue.QueueInvalid):
        queue.record_outcome(session, staff_id=me.id, request_id=later.id, outcome=Outcome.CALL_LATER)
    at = utcnow() + timedelta(hours=5)
    queue.record_outcome(session, staff_id=me.id, request_id=later.id, outcome=Outcome.CALL_LATER, call_at=at)
    session.refresh(later)
    assert later.status == "waiting" and later.next_attempt_at == at and later.due_at == at


def test_call_later_within_the_hour_keeps_the_time_the_member_asked_for(session: Session) -> None:
    """The gap between tries spaces out unanswered calls; it does not move a call the member agreed to."""
    me = agent(session)
    request = waiting(session)
    queue.take_next(session, staff_id=me.id)
    at = utcnow() + timedelta(minutes=30)
    queue.record_outcome(session, staff_id=me.id, request_id=request.id, outcome=Outcome.CALL_LATER, call_at=at)
    session.refresh(request)
    assert request.next_attempt_at == at and request.due_at == at


def test_wrong_number_closes_at_once_and_never_texts_that_number(session: Session) -> None:
    request = waiting(session)
    me = agent(session)
    queue.take_next(session, staff_id=me.id)
    queue.record_outcome(session, staff_id=me.id, request_id=request.id, outcome=Outcome.WRONG_NUMBER)
    session.refresh(request)
    assert request.status == "closed" and request.closed_reason == "wrong_number"
    assert session.execute(select(TransactionalMessage).where(
        TransactionalMessage.kind == "callback_unreachable")).first() is None


def test_supervisor_reassigns_releases_and_reprioritises(session: Session) -> None:
    request = waiting(session)
    first, second, boss = agent(session, "first"), agent(session, "second"), agent(session, "boss", role="supervisor")
    queue.take_next(session, staff_id=first.id)
    queue.reassign(session, request_id=request.id, to_staff_id=second.id, actor=f"staff:{boss.id}")
    session.refresh(request)
    assert request.claimed_by == second.id
    with pytest.raises(Conflict):
        queue.record_outcome(session, staff_id=first.id, request_id=request.id, outcome=Outcome.RESOLVED)
    queue.release(session, request_id=request.id, actor=f"staff:{boss.id}")
    session.refresh(request)
    assert request.status == "waiting" and request.claimed_by is None
    queue.reprioritise(session, request_id=request.id, priority=Priority.URGENT, actor=f"staff:{boss.id}")
    session.refresh(request)
    assert request.priority == Priority.URGENT
    assert _actions(session, f"callback:{request.id}")[-3:] == [
        "callback.reassigned", "callback.released", "callback.reprioritised"]


def test_the_claim_is_a_guarded_update_that_changes_one_row(session: Session) -> None:
    from app.callbacks.queue_repository import QueueRepository

    request = waiting(session)
    a, b = agent(session, "a"), agent(session, "b")
    now = utcnow()
    repo = QueueRepository(session)
    assert repo.claim_one(request.id, staff_id=a.id, now=now, lease_until=now + timedelta(minutes=5))
    assert not repo.claim_one(request.id, staff_id=b.id, now=now, lease_until=now + timedelta(minutes=5))
    assert session.execute(select(CallbackRequest.claimed_by).where(CallbackRequest.id == request.id)).scalar() == a.id


def test_a_call_that_outlasts_the_lease_is_recorded_while_nobody_else_took_the_request(session: Session) -> None:
    request = waiting(session)
    me = agent(session)
    queue.take_next(session, staff_id=me.id)
    request.lease_until = utcnow() - timedelta(minutes=1)
    session.flush()
    with pytest.raises(Conflict):
        queue.call_sheet(session, staff_id=me.id, request_id=request.id)  # the details need a live lease
    queue.record_outcome(session, staff_id=me.id, request_id=request.id, outcome=Outcome.RESOLVED)
    session.refresh(request)
    assert request.status == "closed"


def test_an_agent_still_on_the_call_renews_the_lease(session: Session) -> None:
    request = waiting(session)
    me, other = agent(session, "me"), agent(session, "other")
    queue.take_next(session, staff_id=me.id)
    request.lease_until = utcnow() + timedelta(seconds=30)
    session.flush()
    renewed = queue.renew(session, staff_id=me.id, request_id=request.id)
    assert renewed.lease_until is not None and renewed.lease_until > utcnow() + timedelta(minutes=5)
    with pytest.raises(Conflict):
        queue.renew(session, staff_id=other.id, request_id=request.id)
