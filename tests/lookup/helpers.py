"""What the lookup and callback tests share: members with exposures, pages' CSRF tokens, and running the
jobs a request queued (from the in-memory broker) in the test's own transaction."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import dramatiq
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.incidents import service as incident_service
from app.kit.ratelimit import LocalLimiter
from app.lookup import hashing
from app.lookup import service as lookup_service
from app.lookup.models import CheckToken, VerificationChallenge
from app.members import imports
from app.members import service as member_service
from app.messages import service as transactional
from app.providers import outbox
from app.providers.outbox import OutboxEmailSender, OutboxSmsSender
from app.worker import Queues, broker
from tests.factories import import_members, member_row

INCIDENT = "hq-test"


def incident(session: Session) -> None:
    """A published incident (once per test transaction)."""
    lookup_service.forget_incident_advice()
    if INCIDENT not in incident_service.incidents_by_code(session):
        incident_service.create_incident(session, code=INCIDENT, title="Headquarters breach",
                                         title_cy="Toriad pencadlys", summary="What happened.", published=True)


def member(session: Session, number: str, *, email: str | None = None, phone: str = "07700 900123",
           categories: str = "", lang: str = "") -> int:
    """A member (and, with `categories`, what was exposed of theirs in the test incident); their id."""
    incident(session)
    import_members(session, member_row(number, email=email, phone=phone, lang=lang))
    if categories:
        csv = f"membership_number,incident_code,categories\n{number},{INCIDENT},{categories}\n"
        imports.import_exposures(session, source=io.BytesIO(csv.encode()), actor="test")
    found = member_service.find_member(session, membership_number=number)
    assert found is not None
    return found


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert match, page.text
    return match.group(1)


def post(client: TestClient, path: str, data: dict[str, str], *, form_page: str | None = None) -> Any:
    token = csrf(client, form_page or path)
    return client.post(path, data={**data, "csrf_token": token})


def run_jobs(session_factory: sessionmaker[Session]) -> int:
    """Run the lookup and transactional jobs waiting in the in-memory broker, in the test's transaction."""
    done = 0
    queues = [broker.queues.get(name) for name in (Queues.TRANSACTIONAL, Queues.MESSAGES)]
    while any(q is not None and not q.empty() for q in queues):
        queue = next(q for q in queues if q is not None and not q.empty())
        message = dramatiq.Message.decode(queue.get_nowait())
        kwargs = message.kwargs or {}
        args = message.args or ()
        to_send = None
        with session_factory() as session:
            if message.actor_name == lookup_service.RESOLVE_ACTOR:
                to_send = lookup_service.resolve_challenge(session, challenge_id=kwargs.get("challenge_id", *args[:1]))
            elif message.actor_name == "lookup.resend_code":
                to_send = lookup_service.send_again(session, challenge_id=kwargs.get("challenge_id", *args[:1]))
            elif message.actor_name in (transactional.SEND_ACTOR, transactional.SEND_CODE_ACTOR):
                to_send = kwargs.get("message_id", *args[:1])
            session.commit()
        if to_send is not None:  # as the actors do: sent in the same job, after the commit
            transactional.send_one(session_factory, to_send, email_sender=OutboxEmailSender(session_factory),
                                   sms_sender=OutboxSmsSender(session_factory),
                                   limiter_for=lambda _channel: LocalLimiter(1000))
        done += 1
    return done


def drain() -> None:
    """Forget jobs an earlier test left in the in-memory broker."""
    for name in (Queues.TRANSACTIONAL, f"{Queues.TRANSACTIONAL}.DQ", Queues.MESSAGES, f"{Queues.MESSAGES}.DQ"):
        if name in broker.queues:
            broker.flush(name)


def last_code(session: Session, to: str) -> str:
    """The code in the newest message the outbox holds for an address or number."""
    entries = outbox.latest(session, to=to, last=1)
    assert entries, f"no message to {to}"
    match = re.search(r"\b(\d{6})\b", entries[0].body)
    assert match, entries[0].body
    return match.group(1)


def time_passes(session: Session, seconds: float, *, identifier: str | None = None) -> None:
    """Move checks (one identifier's, or all) back in time, as if `seconds` had gone by."""
    back, V, T = timedelta(seconds=seconds), VerificationChallenge, CheckToken
    challenges, tokens = select(V), select(T)
    if identifier is not None:
        ihash = hashing.identifier_hash(identifier)
        challenges, tokens = challenges.where(V.identifier_hash == ihash), tokens.where(T.identifier_hash == ihash)
    for challenge in session.execute(challenges.execution_options(populate_existing=True)).scalars():
        for name in ("created_at", "last_sent_at", "expires_at", "sends_since"):
            setattr(challenge, name, getattr(challenge, name) - back)
    for token in session.execute(tokens.execution_options(populate_existing=True)).scalars():
        token.created_at -= back
    session.flush()
