"""Check your status: a code to the contact we hold, whether or not we hold one, and what a member sees.

The web does the same work for every identifier (hash it, seal it, store a challenge, audit, queue a job)
and answers the same page; a worker looks the identifier up and, for a member, sends the code. So the
answer, its headers and its timing cannot tell a visitor whether we hold someone.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.config import get_settings
from app.db import utcnow
from app.errors import AppError
from app.i18n import translations
from app.incidents import service as incident_service
from app.kit.contacts import ContactError, normalise_email
from app.lookup import hashing
from app.lookup.models import ChallengeStatus, VerificationChallenge
from app.lookup.repository import ChallengeRepository
from app.members import pii
from app.members import service as member_service
from app.notices import service as notice_service
from app.notices.transactional import service as transactional
from app.worker import enqueue

RESOLVE_ACTOR = "lookup.resolve_challenge"
IDENTIFIER_CONTEXT = b"lookup.identifier"
_MEMBERSHIP_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9/-]{0,31}$")
_CODE = re.compile(r"^[0-9]{6}$")
PUBLIC = "public"


class InvalidIdentifier(AppError):
    status_code = 422


class ResendRefused(AppError):
    status_code = 422

    def __init__(self, reason: str, *, wait_seconds: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason  # "too_soon", "too_many" or "expired"
        self.wait_seconds = wait_seconds


# --- identifiers -------------------------------------------------------------------------------------
def normalise_identifier(raw: str) -> str:
    """A membership number (letters upper-cased, spaces dropped) or a normalised email address."""
    value = raw.strip()
    if "@" in value:
        try:
            return normalise_email(value)
        except ContactError as exc:
            raise InvalidIdentifier("email") from exc
    number = value.replace(" ", "").upper()
    if not _MEMBERSHIP_NUMBER.fullmatch(number):
        raise InvalidIdentifier("number")
    return number


def identifier_hash(raw: str) -> str:
    """The keyed hash of what was typed, for request limits and the audit (never the value itself)."""
    try:
        return hashing.identifier_hash(normalise_identifier(raw))
    except InvalidIdentifier:
        return hashing.identifier_hash(raw.strip().lower())


def normalise_code(raw: str) -> str:
    """Six digits; spaces and dashes people copy from a message are dropped."""
    code = re.sub(r"[\s-]", "", raw)
    if not _CODE.fullmatch(code):
        raise InvalidIdentifier("code")
    return code


# --- asking for a code -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Issued:
    token: str  # for the visitor's cookie; stored only hashed
    identifier_hash: str


def request_code(session: Session, *, identifier: str, language: str) -> Issued:
    """Start a check for whatever was typed: the same work, and the same answer, whether or not we hold it."""
    settings = get_settings()
    normalised = normalise_identifier(identifier)
    now = utcnow()
    token = secrets.token_urlsafe(32)
    challenge = ChallengeRepository(session).add(VerificationChallenge(
        token_hash=hashing.token_hash(token), identifier_hash=hashing.identifier_hash(normalised),
        identifier_enc=pii.keyring().encrypt(normalised, context=IDENTIFIER_CONTEXT), language=language,
        status=ChallengeStatus.PENDING, attempts=0, sends=1, created_at=now, last_sent_at=now,
        expires_at=now + timedelta(minutes=settings.CHECK_CODE_MINUTES)), flush=True)
    audit_service.record(session, actor=PUBLIC, action="check.code_requested", subject=f"challenge:{challenge.id}",
                         identifier=challenge.identifier_hash)
    enqueue(session, RESOLVE_ACTOR, challenge_id=challenge.id)
    return Issued(token, challenge.identifier_hash)


def resolve_challenge(session: Session, *, challenge_id: int) -> int | None:
    """(Worker) Look the identifier up; for a member, supersede older codes and write a new one's message.

    Returns the id of that message, for the caller to send once this transaction has committed.
    """
    repo = ChallengeRepository(session)
    challenge = repo.get(challenge_id)
    if challenge is None or challenge.status != ChallengeStatus.PENDING or challenge.identifier_enc is None:
        return None
    identifier = pii.keyring().decrypt(challenge.identifier_enc, context=IDENTIFIER_CONTEXT)
    challenge.identifier_enc = None  # looked up: no need to keep what was typed
    challenge.resolved_at = utcnow()
    member_id = (member_service.find_member(session, email=identifier) if "@" in identifier
                 else member_service.find_member(session, membership_number=identifier))
    if member_id is None:
        challenge.status = ChallengeStatus.UNMATCHED
        audit_service.record(session, actor="system", action="check.unmatched", subject=f"challenge:{challenge.id}")
        return None
    challenge.member_id = member_id
    return _send_code(session, challenge)


def _send_code(session: Session, challenge: VerificationChallenge) -> int | None:
    assert challenge.member_id is not None
    profile = member_service.profile(session, challenge.member_id)
    now = utcnow()
    channel, to = None, None
    if profile is not None and profile.email:
        channel, to = "email", profile.email
    elif profile is not None and profile.phone and profile.sms_capable:
        channel, to = "sms", profile.phone
    if channel is None or to is None:
        challenge.status = ChallengeStatus.UNMATCHED  # nothing to send to: the helpline can help instead
        audit_service.record(session, actor="system", action="check.no_contact",
                             subject=f"member:{challenge.member_id}")
        return None
    ChallengeRepository(session).supersede_live(challenge.member_id, keep_id=challenge.id, now=now)
    code = f"{secrets.randbelow(10**6):06d}"
    challenge.code_hash = hashing.code_hash(challenge.id, code)
    challenge.channel = channel
    challenge.status = ChallengeStatus.SENT
    challenge.attempts = 0
    subject, body = code_message(code, channel=channel, language=challenge.language)
    message = transactional.queue_message(session, kind="check_code", channel=channel, to=to, subject=subject,
                                          body=body, expires_at=challenge.expires_at, enqueue_send=False,
                                          language=challenge.language)
    audit_service.record(session, actor="system", action="check.code_sent", subject=f"member:{challenge.member_id}",
                         challenge=challenge.id, channel=channel)
    return message.id


def code_message(code: str, *, channel: str, language: str) -> tuple[str, str]:
    """(subject, body) of the message carrying a code, in the language the visitor used."""
    settings = get_settings()
    _ = translations(language).gettext
    minutes = int(get_settings().CHECK_CODE_MINUTES)
    org = settings.organisation_name(language)
    if channel == "sms":
        return "", _("{code} is your {org} code. It expires in {minutes} minutes. Never share it. If you did not "
                     "ask for it, ignore this message.").format(code=code, org=org, minutes=minutes)
    subject = _("Your code to check your status")
    body = _("{code} is your code to check your status with {org}.\n\nIt expires in {minutes} minutes. We will "
             "never phone you to ask for this code.\n\nIf you did not ask for it, you can ignore this message."
             ).format(code=code, org=org, minutes=minutes)
    return subject, body


def resend_code(session: Session, *, token: str) -> None:
    """Send a new code for the same check after the cool-down; the same work whether or not we hold it."""
    settings = get_settings()
    challenge = _challenge(session, token, lock=True)
    now = utcnow()
    refused = None
    if challenge is None or challenge.status in (ChallengeStatus.VERIFIED, ChallengeStatus.SUPERSEDED):
        refused = ResendRefused("expired")
    elif challenge.sends >= settings.CHECK_MAX_SENDS:
        refused = ResendRefused("too_many")
    else:
        wait = settings.CHECK_RESEND_SECONDS - (now - challenge.last_sent_at).total_seconds()
        if wait > 0:
            refused = ResendRefused("too_soon", wait_seconds=int(wait) + 1)
    if refused is not None:
        # The caller shows the refusal as a page (no rollback), so this record stays.
        audit_service.record(session, actor=PUBLIC, action="check.resend_refused",
                             subject=f"challenge:{challenge.id}" if challenge else "", reason=refused.reason,
                             identifier=challenge.identifier_hash if challenge else None)
        raise refused
    assert challenge is not None
    challenge.sends += 1
    challenge.last_sent_at = now
    challenge.expires_at = now + timedelta(minutes=settings.CHECK_CODE_MINUTES)
    challenge.attempts = 0
    if challenge.status in (ChallengeStatus.SENT, ChallengeStatus.LOCKED):
        challenge.status = ChallengeStatus.SENT if challenge.member_id is not None else ChallengeStatus.UNMATCHED
    audit_service.record(session, actor=PUBLIC, action="check.code_resent", subject=f"challenge:{challenge.id}",
                         identifier=challenge.identifier_hash)
    enqueue(session, "lookup.resend_code", challenge_id=challenge.id)


def send_again(session: Session, *, challenge_id: int) -> int | None:
    """(Worker) The code for a resend: a new one for a member, nothing for anyone else; the message's id."""
    challenge = ChallengeRepository(session).get(challenge_id)
    if challenge is None:
        return None
    if challenge.status == ChallengeStatus.PENDING:
        return resolve_challenge(session, challenge_id=challenge_id)
    if challenge.status == ChallengeStatus.SENT and challenge.member_id is not None:
        return _send_code(session, challenge)
    return None


def sweep_pending(session: Session) -> int:
    """Queue again the lookups the queue lost; returns how many."""
    now = utcnow()
    found = ChallengeRepository(session).pending_before(now - timedelta(seconds=20), now)
    for challenge_id in found:
        enqueue(session, RESOLVE_ACTOR, challenge_id=challenge_id)
    return len(found)


def _challenge(session: Session, token: str | None, *, lock: bool = False) -> VerificationChallenge | None:
    if not token:
        return None
    return ChallengeRepository(session).by_token_hash(hashing.token_hash(token), lock=lock)


def challenge_identifier_hash(session: Session, *, token: str | None) -> str | None:
    """The identifier hash of the visitor's check (to limit code checks per identifier)."""
    challenge = _challenge(session, token)
    return None if challenge is None else challenge.identifier_hash


# --- checking a code ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeCheck:
    member_id: int | None  # set when the code was right
    problem: str | None = None  # else "wrong", "expired" or "locked"


def check_code(session: Session, *, token: str | None, code: str) -> CodeCheck:
    """Check a typed code; a wrong one counts as a try, members or not alike (the caller commits either way)."""
    settings = get_settings()
    code = normalise_code(code)
    challenge = _challenge(session, token, lock=True)
    now = utcnow()
    if challenge is None or challenge.status in (ChallengeStatus.VERIFIED, ChallengeStatus.SUPERSEDED) \
            or challenge.expires_at <= now:
        return CodeCheck(None, "expired")
    if challenge.status == ChallengeStatus.LOCKED:
        return CodeCheck(None, "locked")
    # Hashed and compared for strangers too (against nothing that can match): the same work either way.
    typed = hashing.code_hash(challenge.id, code)
    right = hashing.same(challenge.code_hash or "-" * 64, typed) and challenge.status == ChallengeStatus.SENT
    if not right:
        challenge.attempts += 1
        locked = challenge.attempts >= settings.CHECK_CODE_TRIES
        if locked:
            challenge.status = ChallengeStatus.LOCKED
        audit_service.record(session, actor=PUBLIC, action="check.code_wrong", subject=f"challenge:{challenge.id}",
                             identifier=challenge.identifier_hash, attempts=challenge.attempts)
        return CodeCheck(None, "locked" if locked else "wrong")
    assert challenge.member_id is not None
    challenge.status = ChallengeStatus.VERIFIED
    challenge.verified_at = now
    audit_service.record(session, actor=f"member:{challenge.member_id}", action="check.verified",
                         subject=f"member:{challenge.member_id}", challenge=challenge.id)
    return CodeCheck(challenge.member_id)


# --- what a signed-in member sees --------------------------------------------------------------------
@dataclass(frozen=True)
class Advice:
    code: str
    name: str
    guidance: Markup  # the incident's own words for the category, else its standing guidance (safe HTML)


@dataclass(frozen=True)
class IncidentStatus:
    code: str
    title: str
    affected: bool
    categories: list[Advice]


@dataclass(frozen=True)
class NoticeLine:
    sent_at: datetime | None
    channel: str
    reference: str
    status: str


@dataclass(frozen=True)
class MemberStatus:
    first_name: str
    incidents: list[IncidentStatus]
    notices: list[NoticeLine]


@dataclass(frozen=True)
class _IncidentAdvice:
    id: int
    code: str
    title: str
    advice: dict[int, Advice]  # category id -> what to do


@dataclass
class _Cached:
    version: object
    checked_at: float
    incidents: list[_IncidentAdvice]


# The incidents and their advice, per language, as rendered: the same for every member, changed a few
# times a day. Re-read when the incidents' version moves, and that is asked at most once a second.
_ADVICE: dict[str, _Cached] = {}
_ADVICE_LOCK = threading.Lock()
RECHECK_SECONDS = 1.0


def _incident_advice(session: Session, language: str) -> list[_IncidentAdvice]:
    now = time.monotonic()
    cached = _ADVICE.get(language)
    if cached is not None and now - cached.checked_at < RECHECK_SECONDS:
        return cached.incidents
    version = incident_service.content_version(session)
    if cached is not None and cached.version == version:
        cached.checked_at = now
        return cached.incidents
    welsh = language == "cy"
    categories = incident_service.categories_by_id(session)
    incidents = []
    for public in incident_service.public_incidents(session):
        incident = public.incident
        guidance = incident_service.category_guidance(session, incident_id=incident.id, lang=language)
        advice = {cid: Advice(c.code, (c.name_cy if welsh else "") or c.name, guidance[c.code])
                  for cid, c in categories.items() if c.code in guidance}
        incidents.append(_IncidentAdvice(incident.id, incident.code,
                                         (incident.title_cy if welsh else "") or incident.title, advice))
    with _ADVICE_LOCK:
        _ADVICE[language] = _Cached(version, now, incidents)
    return incidents


def forget_incident_advice() -> None:
    """Drop the cached incidents and advice (tests switch databases under one process)."""
    with _ADVICE_LOCK:
        _ADVICE.clear()


def member_status(session: Session, *, member_id: int, language: str) -> MemberStatus:
    """Per published incident: affected or not, which data and what to do; and the notices we sent.

    Reading one's own status is not audited per view: the sign-in that opened the session is.
    """
    profile = member_service.profile(session, member_id)
    exposed = member_service.exposures_of(session, member_id=member_id)
    incidents = []
    for incident in _incident_advice(session, language):
        advice = [incident.advice[c] for c in exposed.get(incident.id, []) if c in incident.advice]
        incidents.append(IncidentStatus(incident.code, incident.title, bool(advice), advice))
    notices = [NoticeLine(n.sent_at, n.channel, n.reference, n.status)
               for n in notice_service.notices_for_member(session, member_id=member_id)]
    return MemberStatus(profile.first_name if profile else "", incidents, notices)


def record_sign_out(session: Session, *, member_id: int) -> None:
    """Audit a member signing out of their status page."""
    audit_service.record(session, actor=f"member:{member_id}", action="check.signed_out", subject=f"member:{member_id}")
