"""Check your status: a code to the contact we hold, whether or not we hold one, and what a member sees.

The web does the same work for every identifier (hash it, seal it, store a challenge, audit, queue a job)
and answers the same page; a worker looks the identifier up and, for a member, sends the code. Every
answer before the right code is made only of what the web itself decided (tries, expiry, sends, the
cool-down), never of what the worker found, so it cannot tell a visitor whether we hold someone.

All checks for one identifier share its newest challenge: a new code goes out only when the last one can
no longer be used, after the cool-down and no more than CHECK_MAX_SENDS an hour, and the newest code works
in every browser checking that identifier. Someone typing another person's identifier over and over costs
us no more messages and does not stop the owner using the code they received.

Tries are counted per browser (CHECK_CODE_TRIES on each code, on its check token) and for every browser
together (CHECK_CODE_GLOBAL_TRIES, on the challenge): one browser's wrong codes refuse only that browser,
so someone guessing cannot lock the owner out; only a code's whole budget retires it for everyone.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
from app.lookup.models import ChallengeStatus, CheckToken, VerificationChallenge
from app.lookup.repository import ChallengeRepository, TokenRepository
from app.members import pii
from app.members import service as member_service
from app.messages import service as transactional
from app.notices import service as notice_service
from app.worker import enqueue

log = logging.getLogger(__name__)
RESOLVE_ACTOR = "lookup.resolve_challenge"
IDENTIFIER_CONTEXT = b"lookup.identifier"
_MEMBERSHIP_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9/-]{0,31}$")
_CODE = re.compile(r"^[0-9]{6}$")
PUBLIC = "public"
SEND_WINDOW = timedelta(hours=1)  # CHECK_MAX_SENDS codes per identifier in this long
TOKEN_LIFETIME = timedelta(hours=1)  # a browser's check ends this long after it began


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
        except (ContactError, ValueError) as exc:  # UnicodeError (IDNA) is a ValueError too
            raise InvalidIdentifier("email") from exc
    number = value.replace(" ", "").upper()
    if not _MEMBERSHIP_NUMBER.fullmatch(number):
        raise InvalidIdentifier("number")
    return number


def normalise_code(raw: str) -> str:
    """Six digits; spaces and dashes people copy from a message are dropped."""
    code = re.sub(r"[\s-]", "", raw)
    if not _CODE.fullmatch(code):
        raise InvalidIdentifier("code")
    return code


# --- the web's side: the same decisions for every identifier -------------------------------------------
@dataclass(frozen=True)
class Issued:
    token: str  # for the visitor's cookie; stored only hashed
    identifier_hash: str


def _sends_in_window(challenge: VerificationChallenge, now: datetime) -> int:
    return challenge.sends if now - challenge.sends_since < SEND_WINDOW else 0


def _usable(challenge: VerificationChallenge, now: datetime) -> bool:
    return challenge.status == ChallengeStatus.LIVE and challenge.expires_at > now


def _may_send(challenge: VerificationChallenge, now: datetime) -> bool:
    settings = get_settings()
    return (_sends_in_window(challenge, now) < settings.CHECK_MAX_SENDS
            and (now - challenge.last_sent_at).total_seconds() >= settings.CHECK_RESEND_SECONDS)


def _new_code(challenge: VerificationChallenge, now: datetime) -> None:
    """Ask for a new code: the old one stops working, tries start again (the worker sends it to a member)."""
    if now - challenge.sends_since >= SEND_WINDOW:
        challenge.sends, challenge.sends_since = 0, now
    challenge.sends += 1
    challenge.last_sent_at = now
    challenge.expires_at = now + timedelta(minutes=get_settings().CHECK_CODE_MINUTES)
    challenge.attempts = 0
    challenge.code_round += 1  # every browser's tries start again
    challenge.status = ChallengeStatus.LIVE
    challenge.code_hash = None


def _keep_alive(challenge: VerificationChallenge, now: datetime) -> None:
    # Out of new codes for the hour: the last one stays usable (its tries still count), so the owner
    # can use the code they received however often someone else typed their identifier.
    if challenge.status == ChallengeStatus.LIVE and challenge.expires_at <= now:
        challenge.expires_at = now + timedelta(minutes=get_settings().CHECK_CODE_MINUTES)


def request_code(session: Session, *, identifier: str, language: str, previous_token: str | None = None) -> Issued:
    """Start a check for whatever was typed: the same work, and the same answer, whether or not we hold it."""
    normalised = normalise_identifier(identifier)
    ihash = hashing.identifier_hash(normalised)
    now = utcnow()
    token = secrets.token_urlsafe(32)
    tokens = TokenRepository(session)
    check = tokens.add(CheckToken(token_hash=hashing.token_hash(token), identifier_hash=ihash, created_at=now,
                                  tries=0, tries_round=0))
    # The same browser checking the same identifier again keeps its tries on the code (a browser that
    # used them gets going again with a new code, not by checking again).
    before = tokens.by_token_hash(hashing.token_hash(previous_token)) if previous_token else None
    if before is not None and before.identifier_hash == ihash and before.created_at > now - TOKEN_LIFETIME:
        check.tries, check.tries_round = before.tries, before.tries_round
    repo = ChallengeRepository(session)
    challenge = repo.current(ihash, lock=True)
    new_code = False
    if challenge is None:
        challenge = repo.add(VerificationChallenge(
            identifier_hash=ihash, status=ChallengeStatus.LIVE, attempts=0, code_round=0, sends=0, sends_since=now,
            created_at=now, last_sent_at=now, expires_at=now))
        _new_code(challenge, now)
        new_code = True
    elif _usable(challenge, now):
        pass  # the code already out is the one to use
    elif _may_send(challenge, now):
        _new_code(challenge, now)
        new_code = True
    else:
        _keep_alive(challenge, now)
    # Sealed and looked up again on every check: who holds an identifier can change between checks.
    challenge.identifier_enc = pii.keyring().encrypt(normalised, context=IDENTIFIER_CONTEXT)
    challenge.language = language
    challenge.asked_at = now
    session.flush()
    audit_service.record(session, actor=PUBLIC, action="check.code_requested", subject=f"challenge:{challenge.id}",
                         identifier=ihash, new_code=new_code)
    enqueue(session, RESOLVE_ACTOR, challenge_id=challenge.id)
    return Issued(token, ihash)


def _check(session: Session, token: str | None) -> CheckToken | None:
    """A browser's check, while it lasts."""
    if not token:
        return None
    found = TokenRepository(session).by_token_hash(hashing.token_hash(token))
    if found is None or found.created_at <= utcnow() - TOKEN_LIFETIME:
        return None
    return found


def _challenge(session: Session, token: str | None, *, lock: bool = False) -> VerificationChallenge | None:
    """The challenge a browser's check shares, while the check lasts."""
    found = _check(session, token)
    return None if found is None else ChallengeRepository(session).current(found.identifier_hash, lock=lock)


def resend_code(session: Session, *, token: str) -> None:
    """Send a new code for the same check after the cool-down; the same work whether or not we hold it."""
    settings = get_settings()
    challenge = _challenge(session, token, lock=True)
    now = utcnow()
    refused = None
    if challenge is None:
        refused = ResendRefused("expired")
    elif _sends_in_window(challenge, now) >= settings.CHECK_MAX_SENDS:
        _keep_alive(challenge, now)
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
    _new_code(challenge, now)
    challenge.asked_at = now
    audit_service.record(session, actor=PUBLIC, action="check.code_resent", subject=f"challenge:{challenge.id}",
                         identifier=challenge.identifier_hash)
    enqueue(session, "lookup.resend_code", challenge_id=challenge.id)


@dataclass(frozen=True)
class CodeCheck:
    member_id: int | None  # set when the code was right
    problem: str | None = None  # else "wrong", "expired" or "locked"


def check_code(session: Session, *, token: str | None, code: str) -> CodeCheck:
    """Check a typed code; a wrong one counts as a try, members or not alike (the caller commits either way)."""
    settings = get_settings()
    code = normalise_code(code)
    check = _check(session, token)
    challenge = None if check is None else ChallengeRepository(session).current(check.identifier_hash, lock=True)
    now = utcnow()
    if check is None or challenge is None or challenge.expires_at <= now:
        return CodeCheck(None, "expired")
    if check.tries_round != challenge.code_round:  # a new code since this browser's tries
        check.tries, check.tries_round = 0, challenge.code_round
    if challenge.status == ChallengeStatus.LOCKED or check.tries >= settings.CHECK_CODE_TRIES:
        return CodeCheck(None, "locked")
    # Hashed and compared for strangers too (against nothing that can match): the same work either way.
    typed = hashing.code_hash(challenge.id, code)
    right = (hashing.same(challenge.code_hash or "-" * 64, typed) and challenge.code_hash is not None
             and challenge.member_id is not None)
    # Every code typed is a try, the right one too: what others checking this identifier see next must
    # not depend on whether someone got in. This browser's tries refuse only this browser; the code's
    # budget, spent by every browser together, retires it for everyone.
    check.tries += 1
    challenge.attempts += 1
    if challenge.attempts >= settings.CHECK_CODE_GLOBAL_TRIES:
        challenge.status = ChallengeStatus.LOCKED
        _budget_spent(challenge)
    locked = challenge.status == ChallengeStatus.LOCKED or check.tries >= settings.CHECK_CODE_TRIES
    if not right:
        audit_service.record(session, actor=PUBLIC, action="check.code_wrong", subject=f"challenge:{challenge.id}",
                             identifier=challenge.identifier_hash, attempts=challenge.attempts,
                             browser_tries=check.tries)
        return CodeCheck(None, "locked" if locked else "wrong")
    assert challenge.member_id is not None
    # Used up, in the worker's column only: to everyone else the check looks as a stranger's would (a
    # stranger's code is never used), and the member's next check gets a new code from the worker.
    challenge.code_hash = None
    challenge.verified_at = now
    audit_service.record(session, actor=f"member:{challenge.member_id}", action="check.verified",
                         subject=f"member:{challenge.member_id}", challenge=challenge.id)
    return CodeCheck(challenge.member_id)


_budget_lock = threading.Lock()
_budget_counter: list[Any] = []


def _budget_spent(challenge: VerificationChallenge) -> None:
    # Someone is guessing at one identifier from many browsers (and so many addresses): worth a look.
    log.warning("check: code for challenge %s tried %s times by all browsers together; retired for everyone",
                challenge.id, challenge.attempts)
    if not _budget_counter:
        with _budget_lock:  # a metric registered twice is an error
            if not _budget_counter:
                from prometheus_client import Counter

                _budget_counter.append(Counter(
                    "portal_check_code_budget_exhausted_total",
                    "Check codes retired for everyone because all browsers together used CHECK_CODE_GLOBAL_TRIES"))
    _budget_counter[0].inc()


# --- the worker's side ---------------------------------------------------------------------------------
def resolve_challenge(session: Session, *, challenge_id: int) -> int | None:
    """(Worker) Look the identifier up; for a member whose check has no usable code, write one's message.

    Returns the id of that message, for the caller to send once this transaction has committed. Writes
    only the worker's columns: the web's answers never depend on what this found.
    """
    challenge = ChallengeRepository(session).locked(challenge_id)
    if challenge is None or challenge.asked_at is None:
        return None
    challenge.asked_at = None
    if challenge.identifier_enc is not None:
        identifier = pii.keyring().decrypt(challenge.identifier_enc, context=IDENTIFIER_CONTEXT)
        challenge.identifier_enc = None  # looked up: no need to keep what was typed
        challenge.resolved_at = utcnow()
        challenge.member_id = (member_service.find_member(session, email=identifier) if "@" in identifier
                               else member_service.find_member(session, membership_number=identifier))
        if challenge.member_id is None:
            challenge.code_hash = None
            audit_service.record(session, actor="system", action="check.unmatched",
                                 subject=f"challenge:{challenge.id}")
            return None
    if challenge.member_id is None or challenge.code_hash is not None or not _usable(challenge, utcnow()):
        return None  # a stranger, a code already out, or a check that ended
    return _send_code(session, challenge)


def _send_code(session: Session, challenge: VerificationChallenge) -> int | None:
    assert challenge.member_id is not None
    profile = member_service.profile(session, challenge.member_id)
    channel, to = None, None
    if profile is not None and profile.email:
        channel, to = "email", profile.email
    elif profile is not None and profile.phone and profile.sms_capable:
        channel, to = "sms", profile.phone
    if channel is None or to is None:
        # Nothing to send to: the helpline can help instead. The check goes on as a stranger's would.
        audit_service.record(session, actor="system", action="check.no_contact",
                             subject=f"member:{challenge.member_id}")
        return None
    code = f"{secrets.randbelow(10**6):06d}"
    challenge.code_hash = hashing.code_hash(challenge.id, code)
    challenge.channel = channel
    subject, body = code_message(code, channel=channel, language=challenge.language)
    message = transactional.queue_message(session, kind="check_code", channel=channel, to=to, subject=subject,
                                          body=body, expires_at=challenge.expires_at, enqueue_send=False,
                                          language=challenge.language)
    audit_service.record(session, actor="system", action="check.code_sent", subject=f"member:{challenge.member_id}",
                         challenge=challenge.id, channel=channel)
    return message.id


def send_again(session: Session, *, challenge_id: int) -> int | None:
    """(Worker) The code for a resend: a new one for a member, nothing for anyone else; the message's id."""
    return resolve_challenge(session, challenge_id=challenge_id)


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


def sweep_pending(session: Session) -> int:
    """Queue again the lookups and sends the queue lost; returns how many."""
    now = utcnow()
    found = ChallengeRepository(session).asked_before(now - timedelta(seconds=20), now)
    for challenge_id in found:
        enqueue(session, RESOLVE_ACTOR, challenge_id=challenge_id)
    return len(found)


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
