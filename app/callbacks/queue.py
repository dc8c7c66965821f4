"""The helpline queue: take the next request (a leased claim), see who to call, record each call's outcome.

A claim is a lease: an agent who goes quiet loses it when `lease_until` passes, and the request is offered
again (`release_expired`, run before every take and by the periodic sweep). Calls in which nobody was reached
wait at least CALLBACK_RETRY_GAP_MINUTES before the request is offered again; after CALLBACK_MAX_ATTEMPTS
calls the request closes as unreachable and the member is told how to reach us.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.callbacks import service as callbacks
from app.callbacks.attempts import UNREACHED, CallbackAttempt, ClosedReason, Outcome
from app.callbacks.models import CallbackRequest, CallbackStatus, Priority
from app.callbacks.queue_repository import CLAIMED, WAITING, QueueRepository
from app.config import get_settings
from app.db import utcnow
from app.errors import AppError, Conflict, NotFound
from app.i18n import translations
from app.members import pii
from app.messages import service as transactional

NOTES_CONTEXT = b"callbacks.notes"
MAX_NOTES = 2000


class QueueInvalid(AppError):
    """An outcome the form could not catch (a 'call later' time missing or in the past)."""

    status_code = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class AgentBusy(Conflict):
    """The agent a request was to be given to already holds another (one live claim per agent)."""


def _lease() -> timedelta:
    return timedelta(minutes=get_settings().CALLBACK_LEASE_MINUTES)


def _gap() -> timedelta:
    return timedelta(minutes=get_settings().CALLBACK_RETRY_GAP_MINUTES)


def _metric(name: str, label: str) -> None:
    from app.callbacks import metrics

    metrics.count(name, label)


# --- taking ----------------------------------------------------------------------------------------------
def release_expired(session: Session, *, now: datetime | None = None) -> int:
    """Return every claim whose lease ran out to the queue; how many returned."""
    released = QueueRepository(session).release_expired(now or utcnow())
    if released:
        audit_service.record(session, actor="system", action="callback.lease_expired", subject="callbacks",
                             released=released)
        _metric("leases_expired", "expired")
    return released


@dataclass(frozen=True)
class QueueView:
    held: CallbackRequest | None
    waiting: Sequence[CallbackRequest]
    counts: dict[str, Any]


def queue_view(session: Session, *, staff_id: int, now: datetime, limit: int = 50) -> QueueView:
    """What an agent's queue page shows: their live claim, the next waiting requests and the counts."""
    repo = QueueRepository(session)
    return QueueView(held=repo.held_by(staff_id, now), waiting=repo.waiting_list(now, limit), counts=repo.counts(now))


def take_next(session: Session, *, staff_id: int) -> CallbackRequest | None:
    """The request this agent holds, else claim the next one offered (exactly one, never another's)."""
    now = utcnow()
    repo = QueueRepository(session)
    release_expired(session, now=now)
    held = repo.held_by(staff_id, now)
    if held is not None:
        return held
    try:
        # A savepoint: the database allows one live claim per agent, and a second "take next" racing this one
        # (a double-click) is refused by it; the claim the other one made is then this agent's answer.
        with session.begin_nested():
            claimed = repo.claim_next(staff_id=staff_id, now=now, lease_until=now + _lease())
    except IntegrityError:
        return repo.held_by(staff_id, now)
    if claimed is None:
        return None
    request = repo.get(claimed)
    if request is not None:
        session.refresh(request)
    # Last: the audit record takes the chain's lock, held until commit, so nothing should follow it.
    audit_service.record(session, actor=audit_service.staff_actor(session, staff_id), action="callback.claimed",
                         subject=f"callback:{claimed}")
    _metric("claims", "take_next")
    return request


def held(session: Session, *, staff_id: int, request_id: int, live: bool = True) -> CallbackRequest:
    """A request this agent holds (on a live lease unless `live` is False), or Conflict."""
    request = QueueRepository(session).get(request_id)
    if request is None:
        raise NotFound("There is no such callback request")
    expired = (request.lease_until or utcnow()) < utcnow()
    if request.status != CLAIMED or request.claimed_by != staff_id or (live and expired):
        raise Conflict("This request is no longer yours: your claim ran out or it was reassigned")
    return request


def renew(session: Session, *, staff_id: int, request_id: int) -> CallbackRequest:
    """Keep holding a request (the agent is still on it): its lease starts again."""
    now = utcnow()
    ok = QueueRepository(session).guarded(
        request_id, where=[CallbackRequest.status == CLAIMED, CallbackRequest.claimed_by == staff_id,
                           CallbackRequest.lease_until >= now],
        values={"lease_until": now + _lease(), "updated_at": now})
    if not ok:
        raise Conflict("This request is no longer yours: your claim ran out or it was reassigned")
    request = held(session, staff_id=staff_id, request_id=request_id)
    session.refresh(request)  # the update went straight to the table
    return request


# --- the call sheet -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallSheet:
    """What the agent needs to make the call: passphrase first, the phone, the member's exposure and notices."""

    request: CallbackRequest
    name: str
    phone: str
    passphrase: str
    exposures: list[str]  # data category names
    notices: list[tuple[datetime | None, str, str]]  # (sent at, channel, status)
    attempts: list[EarlierCall]  # this request's calls and earlier requests' of the same member or phone
    phone_shown: str = ""  # the phone as the agent dials it: national format for a UK number

    @property
    def tel(self) -> str:
        """A tel: link's target (the number in E.164)."""
        return "tel:" + self.phone


@dataclass(frozen=True)
class EarlierCall:
    made_at: datetime
    reference: str  # the request it was made for
    outcome: str
    notes: str
    by: str  # the agent's email
    call_at: datetime | None  # the time a "call later" asked for


def shown_phone(e164: str) -> str:
    """A UK number in national format (07700 900123), any other in international format."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == 44 else \
        phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(parsed, style)


def call_sheet(session: Session, *, staff_id: int, request_id: int) -> CallSheet:
    """Open the held request's sealed details (audited: who saw whose details, never the details themselves)."""
    from app.incidents import service as incident_service
    from app.members import service as member_service
    from app.notices import service as notice_service

    request = held(session, staff_id=staff_id, request_id=request_id)
    opened = callbacks.details(request)
    exposures: list[str] = []
    notices: list[tuple[datetime | None, str, str]] = []
    if request.member_id is not None:
        categories = incident_service.categories_by_id(session)
        found = member_service.exposures_of(session, member_id=request.member_id)
        exposures = sorted({categories[c].name for ids in found.values() for c in ids})
        notices = [(n.sent_at, n.channel, n.status)
                   for n in notice_service.notices_for_member(session, member_id=request.member_id, limit=10)]
    keys = pii.keyring()
    attempts = [EarlierCall(a.made_at, reference, a.outcome,
                            keys.decrypt(a.notes_enc, context=NOTES_CONTEXT) if a.notes_enc else "", email, a.call_at)
                for a, reference, email in QueueRepository(session).earlier_calls(request, limit=20)]
    audit_service.record(session, actor=audit_service.staff_actor(session, staff_id), action="callback.details_viewed",
                         subject=f"callback:{request.id}", member=request.member_id is not None,
                         exposure=bool(exposures), notices=len(notices))
    return CallSheet(request, opened.name, opened.phone, opened.passphrase, exposures, notices, attempts,
                     shown_phone(opened.phone))


# --- outcomes ------------------------------------------------------------------------------------------------
def record_outcome(session: Session, *, staff_id: int, request_id: int, outcome: Outcome, notes: str = "",
                   call_at: datetime | None = None) -> CallbackRequest:
    """Record one call on a held request and move the request on: closed, or back in the queue after a gap."""
    settings = get_settings()
    now = utcnow()
    # A call that outlasted the lease can still be recorded while nobody else has taken the request.
    request = held(session, staff_id=staff_id, request_id=request_id, live=False)
    if outcome is Outcome.CALL_LATER and (call_at is None or call_at <= now):
        raise QueueInvalid("call_at", "past" if call_at is not None else "missing")
    notes = notes.strip()[:MAX_NOTES]
    attempts = request.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "claimed_by": None, "lease_until": None, "claimed_at": None,
                                 "updated_at": now}
    reason: ClosedReason | None = None
    if outcome is Outcome.RESOLVED:
        reason = ClosedReason.RESOLVED
    elif outcome is Outcome.WRONG_NUMBER:
        reason = ClosedReason.WRONG_NUMBER  # never retried: the number is not theirs
    elif outcome in UNREACHED and attempts >= settings.CALLBACK_MAX_ATTEMPTS:
        reason = ClosedReason.UNREACHABLE
    if reason is not None:
        values.update(status=CallbackStatus.CLOSED.value, closed_reason=reason.value, closed_at=now)
    else:
        # Back to the queue after the gap between tries; a time the member asked for is kept as it is (the
        # gap spaces out unanswered calls, it must not move a call the member is waiting for).
        again = call_at if outcome is Outcome.CALL_LATER and call_at is not None else now + _gap()
        values.update(status=WAITING, next_attempt_at=again)
        if outcome is Outcome.CALL_LATER:
            values["due_at"] = again
    changed = QueueRepository(session).guarded(
        request.id, where=[CallbackRequest.status == CLAIMED, CallbackRequest.claimed_by == staff_id],
        values=values)
    if not changed:
        raise Conflict("This request is no longer yours: your claim ran out or it was reassigned")
    QueueRepository(session).add_attempt(CallbackAttempt(
        request_id=request.id, staff_id=staff_id, outcome=outcome.value, made_at=now,
        notes_enc=pii.keyring().encrypt(notes, context=NOTES_CONTEXT) if notes else None,
        call_at=call_at if outcome is Outcome.CALL_LATER else None))
    session.refresh(request)
    audit_service.record(session, actor=audit_service.staff_actor(session, staff_id), action="callback.attempt",
                         subject=f"callback:{request.id}",
                         outcome=outcome.value, attempt=attempts, closed=reason.value if reason else None,
                         notes=bool(notes))
    _metric("outcomes", outcome.value)
    if outcome is Outcome.CALL_LATER and request.next_attempt_at is not None:
        callbacks.tell_member_call_moved(session, request=request, call_at=request.next_attempt_at)
    if reason is ClosedReason.UNREACHABLE or reason is ClosedReason.WRONG_NUMBER:
        _tell_unreachable(session, request, wrong_number=reason is ClosedReason.WRONG_NUMBER)
    return request


def unreachable_message(request: CallbackRequest, *, channel: str) -> tuple[str, str]:
    """(subject, body) telling the member we could not reach them and how to reach us, in their language."""
    settings = get_settings()
    _ = translations(request.language).gettext
    values = {"reference": request.reference, "org": settings.organisation_name(request.language),
              "url": settings.PUBLIC_BASE_URL.rstrip("/") + "/callback"}
    if channel == "sms":
        return "", _("{org}: we tried to call you back about request {reference} but could not reach you. "
                     "To ask again: {url}").format(**values)
    subject = _("We could not reach you ({reference})").format(**values)
    body = _("We tried to call you back about your request {reference} but could not reach you, so we have "
             "closed it.\n\nIf you still want to talk to us, ask for a call back again at {url}.").format(**values)
    return subject, body


def _tell_unreachable(session: Session, request: CallbackRequest, *, wrong_number: bool) -> None:
    """By the member's email on file, else by SMS to the number given (never to a number that was wrong)."""
    from app.members import service as member_service

    channel, to = None, None
    if request.member_id is not None:
        profile = member_service.profile(session, request.member_id)
        if profile is not None and profile.email:
            channel, to = "email", profile.email
    if channel is None and not wrong_number:
        phone, sms = callbacks.parse_phone(callbacks.details(request).phone)
        if sms:
            channel, to = "sms", phone
    if channel is None or to is None:
        return
    subject, body = unreachable_message(request, channel=channel)
    transactional.queue_message(session, kind="callback_unreachable", channel=channel, to=to, subject=subject,
                                body=body, language=request.language)


# --- supervisors ------------------------------------------------------------------------------------------------
def reassign(session: Session, *, request_id: int, to_staff_id: int, actor: str) -> None:
    """Give an open request to this agent on a fresh lease (whoever held it loses it)."""
    from app.auth import service as auth_service
    from app.auth.models import Role

    agent = auth_service.staff_by_id(session, to_staff_id)
    if agent is None or not agent.active or agent.role not in (Role.AGENT.value, Role.SUPERVISOR.value):
        raise NotFound("There is no such agent")
    now = utcnow()
    try:
        with session.begin_nested():  # the database allows one live claim per agent
            ok = QueueRepository(session).guarded(
                request_id, where=[CallbackRequest.status.in_((WAITING, CLAIMED))],
                values={"status": CLAIMED, "claimed_by": agent.id, "lease_until": now + _lease(), "claimed_at": now,
                        "updated_at": now})
    except IntegrityError as exc:
        raise AgentBusy("That agent is already on a call: release their request first or choose another") from exc
    if not ok:
        raise Conflict("This request is closed")
    audit_service.record(session, actor=actor, action="callback.reassigned", subject=f"callback:{request_id}",
                         to=agent.email)
    _metric("claims", "reassigned")


def release(session: Session, *, request_id: int, actor: str) -> None:
    """Put a claimed request back in the queue now (a stuck claim)."""
    ok = QueueRepository(session).guarded(
        request_id, where=[CallbackRequest.status == CLAIMED],
        values={"status": WAITING, "claimed_by": None, "lease_until": None, "claimed_at": None,
                "updated_at": utcnow()})
    if not ok:
        raise Conflict("This request is not claimed")
    audit_service.record(session, actor=actor, action="callback.released", subject=f"callback:{request_id}")


def reprioritise(session: Session, *, request_id: int, priority: Priority, actor: str) -> None:
    """A new priority band; the request is due by the new band's SLA from when it was first offered."""
    request = QueueRepository(session).get(request_id)
    if request is None:
        raise NotFound("There is no such callback request")
    ok = QueueRepository(session).guarded(
        request_id, where=[CallbackRequest.status.in_((WAITING, CLAIMED))],
        values={"priority": int(priority), "due_at": max(request.window_start, request.created_at)
                + callbacks.sla(priority), "updated_at": utcnow()})
    if not ok:
        raise Conflict("This request is closed")
    audit_service.record(session, actor=actor, action="callback.reprioritised", subject=f"callback:{request_id}",
                         priority=int(priority), before=request.priority)
