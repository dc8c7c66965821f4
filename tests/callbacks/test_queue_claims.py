"""One live claim per agent, held by the database: a second claim for an agent is refused even when two
"take next" run at once (a double-click), and a supervisor cannot give a busy agent a second request."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.callbacks import queue
from app.callbacks.models import CallbackRequest
from app.db import default_session_factory, session_scope, utcnow
from tests.callbacks.queue_helpers import agent, waiting
from tests.conftest import BACKEND


def _claims_of(session: Session, staff_id: int) -> list[int]:
    return list(session.execute(select(CallbackRequest.id).where(CallbackRequest.status == "claimed",
                                                                 CallbackRequest.claimed_by == staff_id)).scalars())


def test_the_database_refuses_a_second_live_claim_for_one_agent(session: Session) -> None:
    first, second = waiting(session), waiting(session)
    me = agent(session)
    assert queue.take_next(session, staff_id=me.id).id == first.id  # type: ignore[union-attr]
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(update(CallbackRequest).where(CallbackRequest.id == second.id)
                        .values(status="claimed", claimed_by=me.id, lease_until=utcnow(), claimed_at=utcnow()))
    assert _claims_of(session, me.id) == [first.id]


def test_take_next_while_holding_a_claim_returns_that_claim(session: Session) -> None:
    first, _second = waiting(session), waiting(session)
    me = agent(session)
    assert queue.take_next(session, staff_id=me.id).id == first.id  # type: ignore[union-attr]
    assert queue.take_next(session, staff_id=me.id).id == first.id  # type: ignore[union-attr]
    assert _claims_of(session, me.id) == [first.id]


def test_a_supervisor_cannot_give_a_busy_agent_a_second_request(session: Session) -> None:
    mine, other = waiting(session), waiting(session)
    busy, boss = agent(session, "busy"), agent(session, "boss", role="supervisor")
    queue.take_next(session, staff_id=busy.id)
    with pytest.raises(queue.AgentBusy):
        queue.reassign(session, request_id=other.id, to_staff_id=busy.id, actor=f"staff:{boss.id}")
    session.refresh(other)
    assert other.status == "waiting" and other.claimed_by is None
    assert _claims_of(session, busy.id) == [mine.id]


@pytest.fixture
def real(fresh_database: str) -> Iterator[sessionmaker[Session]]:
    yield default_session_factory()


def _wait_until_blocked(real: sessionmaker[Session], pid: int, thread: threading.Thread) -> None:
    """Until PostgreSQL says the connection waits on a lock (here: the unique index), or the thread ended."""
    with real() as watcher:
        for _ in range(1200):
            state = watcher.execute(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                                    {"pid": pid}).scalar()
            watcher.rollback()
            if state == "Lock" or not thread.is_alive():
                return
            threading.Event().wait(0.05)


def test_a_double_take_on_two_connections_claims_one_request(real: sessionmaker[Session]) -> None:
    """PostgreSQL: the second claim waits on the unique index, then is refused. SQLite: its one writer
    serialises the two, and the second finds the first's claim."""
    with session_scope(real) as s:
        ids = [waiting(s).id for _ in range(3)]
        me = agent(s).id
    first = real()
    second = real()
    try:
        second_pid = 0
        if BACKEND == "postgresql":
            # Its transaction stays open, so the take below runs on this very connection.
            second_pid = second.execute(text("SELECT pg_backend_pid()")).scalar_one()
        taken_first = queue.take_next(first, staff_id=me)  # claimed, not yet committed
        assert taken_first is not None
        answer: list[int | None] = []
        errors: list[BaseException] = []

        def take_again() -> None:
            try:
                taken = queue.take_next(second, staff_id=me)
                answer.append(taken.id if taken else None)
                second.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        thread = threading.Thread(target=take_again)
        thread.start()
        if BACKEND == "postgresql":
            # The second claim waits on the database's rule (the first claim is not committed yet)...
            _wait_until_blocked(real, second_pid, thread)
            assert thread.is_alive(), "the second take waited for the first"
        first.commit()  # ...and when the first commits, the second is refused and answers with the first's claim
        thread.join(timeout=60)
        assert not errors, errors
        assert answer == [taken_first.id]
    finally:
        first.close()
        second.close()
    with session_scope(real) as s:
        assert _claims_of(s, me) == [taken_first.id]
        left = s.execute(select(func.count()).select_from(CallbackRequest)
                         .where(CallbackRequest.id.in_(ids), CallbackRequest.status == "waiting")).scalar_one()
        assert left == 2, "no request was hidden behind a second claim"
