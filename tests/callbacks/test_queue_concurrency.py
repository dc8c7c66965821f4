"""Many agents taking next at once, each on its own connection, against committed data: every request is
claimed exactly once (PostgreSQL's SKIP LOCKED claim; on SQLite the guarded update under its one writer)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.callbacks import queue
from app.callbacks.models import CallbackRequest
from app.db import default_session_factory, session_scope
from tests.callbacks.queue_helpers import agent, waiting
from tests.conftest import BACKEND

REQUESTS = 1000 if BACKEND == "postgresql" else 200
AGENTS = 16 if BACKEND == "postgresql" else 4


@pytest.fixture
def real(fresh_database: str) -> Iterator[sessionmaker[Session]]:
    yield default_session_factory()


def test_many_agents_at_once_claim_every_request_exactly_once(real: sessionmaker[Session]) -> None:
    with session_scope(real) as s:
        for _ in range(REQUESTS):
            waiting(s, flush=False)
        agent_ids = [agent(s, f"c{n}").id for n in range(AGENTS)]
    claims: list[tuple[int, int]] = []  # (agent, request)
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(AGENTS)

    def work(staff_id: int) -> None:
        try:
            start.wait(timeout=30)
            while True:
                with session_scope(real) as s:
                    taken = queue.take_next(s, staff_id=staff_id)
                    if taken is None:
                        return
                    taken_id = taken.id
                    # Put it down at once (as if the call were made) so this agent can take the next.
                    s.execute(CallbackRequest.__table__.update().where(CallbackRequest.id == taken_id)
                              .values(status="closed", closed_reason="resolved"))
                with lock:
                    claims.append((staff_id, taken_id))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in agent_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors[:3]
    per_request = Counter(request_id for _agent, request_id in claims)
    assert len(per_request) == REQUESTS and set(per_request.values()) == {1}, "every request claimed exactly once"
    assert len({a for a, _r in claims}) > 1, "the agents really worked side by side"
    with session_scope(real) as s:
        left = s.execute(select(func.count()).select_from(CallbackRequest)
                         .where(CallbackRequest.status != "closed")).scalar_one()
    assert left == 0
