"""Callback requests: ask for a call back, see the open one, cancel it. The helpline queue builds on these.

Name, phone and passphrase are sealed with the PII keyring; the phone's blind index finds the open request
for a number. One open request per member and per phone (partial unique indexes hold it under races too).
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.callbacks import hours, texts
from app.callbacks.models import OPEN_STATUSES, CallbackRequest, CallbackStatus, Priority
from app.callbacks.repository import CallbackRepository
from app.config import Environment, get_settings
from app.db import utcnow
from app.errors import AppError
from app.i18n import translations
from app.incidents import service as incident_service
from app.kit.contacts import ContactError, check_phone, is_drama
from app.members import pii
from app.members import service as member_service
from app.messages import service as transactional

LOCAL = hours.LOCAL
NAME_CONTEXT = b"callbacks.name"
PHONE_CONTEXT = b"callbacks.phone"
PASSPHRASE_CONTEXT = b"callbacks.passphrase"
TOPICS = ("affected", "bank", "ni_number", "scam", "other")
FINANCIAL = frozenset({"bank_details", "card_details"})
# Crockford's base 32: no I, L, O or U, so a reference read aloud is not misheard or mistyped.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONFUSED = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
MAX_WINDOW = timedelta(days=14)
MIN_WINDOW = timedelta(minutes=30)
FURTHEST_START = timedelta(days=30)


class CallbackInvalid(AppError):
    """A field the form could not catch; `field` and `reason` say which and why."""

    status_code = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CallbackNotFound(AppError):
    status_code = 422


# --- values ------------------------------------------------------------------------------------------
def new_reference() -> str:
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"CB-{code[:4]}-{code[4:]}"


def check_plain(value: str) -> str:
    """Refuse control and invisible formatting characters (a right-to-left override can disguise text)."""
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value):
        raise ValueError("control characters")
    return value


def normalise_reference(raw: str) -> str:
    """What was typed, as we print it: case, spaces, dashes and O/I/L confusions forgiven."""
    compact = "".join(ch for ch in raw.upper() if ch.isalnum()).translate(_CONFUSED)
    if compact.startswith("CB"):
        compact = compact[2:]
    return f"CB-{compact[:4]}-{compact[4:]}" if len(compact) == 8 else compact


def reference_key(raw: str) -> str:
    """A keyed hash of a typed reference, for request limits."""
    return pii.keyring().blind_index(normalise_reference(raw), kind="callback_reference")


def done_token(reference: str) -> str:
    """The requester's proof of a request they made (a cookie): the reference and a keyed hash of it."""
    return f"{reference}.{pii.keyring().blind_index(reference, kind='callback_done')[:32]}"


def reference_of_done_token(token: str) -> str | None:
    """The reference a requester's token proves, or None for anything else (a guessed reference alone)."""
    reference, _, mac = token[:80].partition(".")
    if not reference or not mac:
        return None
    expected = pii.keyring().blind_index(reference, kind="callback_done")[:32]
    return reference if hmac.compare_digest(expected.encode(), mac.encode("utf-8", "surrogatepass")) else None


def parse_phone(raw: str) -> tuple[str, bool]:
    """(E.164, can take SMS) of a typed number, or CallbackInvalid."""
    try:
        phone = check_phone(raw, allow_drama=get_settings().ENV is not Environment.PRODUCTION)
    except ContactError as exc:
        raise CallbackInvalid("phone", "invalid") from exc
    return phone.e164, phone.sms


def phone_country_allowed(e164: str) -> bool:
    """Whether a number (E.164) is in a country we call and text (CALLBACK_PHONE_COUNTRIES)."""
    allowed = {code.upper() for code in get_settings().CALLBACK_PHONE_COUNTRIES}
    if is_drama(e164):  # the fictional mobiles (accepted outside production) are British
        return "GB" in allowed
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) in allowed


def parse_local(raw: str, field: str) -> datetime:
    """An ISO local date and time (as a datetime-local field sends it), in UK time, as UTC."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise CallbackInvalid(field, "format") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL)
    return value.astimezone(ZoneInfo("UTC"))


def check_window(start: datetime, end: datetime, *, now: datetime) -> None:
    """A window that ends in the future, starts within 30 days, lasts 30 minutes to 14 days, and is not wholly
    outside the helpline's hours."""
    if end <= now:
        raise CallbackInvalid("window_end", "past")
    if end - start < MIN_WINDOW:
        raise CallbackInvalid("window_end", "too_short")
    if end - start > MAX_WINDOW:
        raise CallbackInvalid("window_end", "too_long")
    if start - now > FURTHEST_START:
        raise CallbackInvalid("window_start", "too_far")
    if hours.first_open_moment(max(start, now), end) is None:
        raise CallbackInvalid("window_start", "closed")


def _due(start: datetime, end: datetime, priority: int, *, now: datetime) -> datetime:
    """One SLA after the first moment of the window the helpline is open (and not before now)."""
    opens = hours.first_open_moment(max(start, now), end) or max(start, now)
    return opens + sla(priority)


def _priority(session: Session, *, member_id: int | None, urgent: bool) -> Priority:
    if member_id is None:  # anyone can tick "urgent": it orders strangers among themselves, never above members
        return Priority.UNVERIFIED_URGENT if urgent else Priority.UNVERIFIED
    if urgent:
        return Priority.URGENT
    if member_id is not None:
        categories = incident_service.categories_by_id(session)
        exposed = member_service.exposures_of(session, member_id=member_id)
        if any(categories[c].code in FINANCIAL for ids in exposed.values() for c in ids):
            return Priority.FINANCIAL
    return Priority.NORMAL


def sla(priority: int) -> timedelta:
    settings = get_settings()
    minutes = {Priority.URGENT: settings.CALLBACK_SLA_URGENT_MINUTES,
               Priority.UNVERIFIED_URGENT: settings.CALLBACK_SLA_URGENT_MINUTES,
               Priority.FINANCIAL: settings.CALLBACK_SLA_FINANCIAL_MINUTES}.get(
        Priority(priority), settings.CALLBACK_SLA_NORMAL_MINUTES)
    return timedelta(minutes=minutes)


# --- requesting ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallbackOutcome:
    request: CallbackRequest | None  # the request to show: the new one, or a member's own open one
    created: bool
    # The phone already has an open request that this visitor may not see: show a neutral page (and the
    # phone is sent its reference again).
    phone_has_open_request: bool = False


def request_callback(
    session: Session, *, member_id: int | None, name: str, phone: str, window_start: datetime,
    window_end: datetime, topic: str, urgent: bool, passphrase: str, language: str,
) -> CallbackOutcome:
    """Ask for a call back; one open request per member and per phone (a second attempt finds the first)."""
    settings = get_settings()
    now = utcnow()
    if topic not in TOPICS:
        raise CallbackInvalid("topic", "unknown")
    e164, sms = parse_phone(phone)
    if not phone_country_allowed(e164):
        raise CallbackInvalid("phone", "country")
    check_window(window_start, window_end, now=now)
    repo = CallbackRepository(session)
    if member_id is not None:
        mine = repo.open_for_member_or_phone(member_id, _phone_index_on_file(session, member_id))
        if mine is not None:
            return CallbackOutcome(mine, created=False)
    phone_index = pii.phone_index(e164)
    taken = repo.open_for_phone(phone_index)
    if taken is not None:
        if member_id is not None and taken.member_id == member_id:
            return CallbackOutcome(taken, created=False)
        # The audit record first: its chain lock, held until commit, makes the text limits' counts exact.
        audit_service.record(session, actor=_actor(member_id), action="callback.repeated",
                             subject=f"callback:{taken.id}")
        session.refresh(taken)  # another repeat may have re-sent it while this one waited for the lock
        _reconfirm(session, taken, now=now, reconfirm_after=timedelta(minutes=settings.CALLBACK_RECONFIRM_MINUTES))
        return CallbackOutcome(None, created=False, phone_has_open_request=True)
    priority = _priority(session, member_id=member_id, urgent=urgent)
    keys = pii.keyring()
    reference = new_reference()
    while repo.reference_taken(reference):
        reference = new_reference()
    request = CallbackRequest(
        reference=reference, member_id=member_id, name_enc=keys.encrypt(name, context=NAME_CONTEXT),
        phone_enc=keys.encrypt(e164, context=PHONE_CONTEXT), phone_index=phone_index, window_start=window_start,
        window_end=window_end, topic=topic, urgent=urgent,
        passphrase_enc=keys.encrypt(passphrase, context=PASSPHRASE_CONTEXT), language=language,
        priority=int(priority), status=CallbackStatus.WAITING, due_at=_due(window_start, window_end, priority, now=now),
        attempts=0, created_at=now, updated_at=now, confirmed_at=now)
    try:
        with session.begin_nested():
            repo.add(request, flush=True)
    except IntegrityError:
        # The same member or phone asked at the same moment: the other request won; treat this as a repeat.
        again = repo.open_for_member(member_id) if member_id is not None else None
        if again is not None:
            return CallbackOutcome(again, created=False)
        return CallbackOutcome(None, created=False, phone_has_open_request=True)
    # The audit record first: its chain lock, held until commit, makes the text limits' counts exact.
    audit_service.record(session, actor=_actor(member_id), action="callback.requested",
                         subject=f"callback:{request.id}", priority=int(priority), urgent=urgent,
                         member=member_id is not None)
    _confirm(session, request, phone=e164, sms=sms, now=now)
    return CallbackOutcome(request, created=True)


def _actor(member_id: int | None) -> str:
    return f"member:{member_id}" if member_id is not None else "public"


def _email_on_file(session: Session, request: CallbackRequest) -> str | None:
    if request.member_id is None:
        return None
    profile = member_service.profile(session, request.member_id)
    return profile.email if profile is not None and profile.email else None


def _phone_index_on_file(session: Session, member_id: int) -> str | None:
    """The blind index of the member's phone on file (None without one)."""
    profile = member_service.profile(session, member_id)
    return pii.phone_index(profile.phone) if profile is not None and profile.phone else None


def _theirs(session: Session, request: CallbackRequest, *, member_id: int) -> bool:
    """Whether a signed-in member may see a request: their own, or one made before signing in with the phone on
    file for them (signing in proved the code for that identity; a request of another member stays theirs)."""
    if request.member_id is not None:
        return request.member_id == member_id
    return request.phone_index == _phone_index_on_file(session, member_id)


def _on_file(session: Session, request: CallbackRequest) -> bool:
    """Whether the request's phone is its signed-in member's phone on file (anyone else's counts as unknown)."""
    if request.member_id is None:
        return False
    profile = member_service.profile(session, request.member_id)
    return bool(profile is not None and profile.phone and pii.phone_index(profile.phone) == request.phone_index)


def _confirm(session: Session, request: CallbackRequest, *, phone: str, sms: bool, now: datetime) -> None:
    """The confirmation message: to a member's email on file, else by SMS to the phone given (if it takes SMS and
    no limit withholds it: the request stands either way)."""
    email = _email_on_file(session, request)
    if email is not None:
        subject, body = confirmation_message(request, channel="email")
        transactional.queue_message(session, kind="callback_confirmation", channel="email", to=email,
                                    subject=subject, body=body, language=request.language)
        return
    if not sms:
        return
    _subject, body = confirmation_message(request, channel="sms")
    if texts.send(session, kind="callback_confirmation", to=phone, phone_index=request.phone_index,
                  on_file=_on_file(session, request), body=body, language=request.language):
        request.confirmed_at = now


def _reconfirm(session: Session, request: CallbackRequest, *, now: datetime, reconfirm_after: timedelta) -> None:
    """Send an open request's reference to its own phone again (never to whoever typed the number)."""
    if request.confirmed_at is not None and now - request.confirmed_at < reconfirm_after:
        return
    phone = pii.keyring().decrypt(request.phone_enc, context=PHONE_CONTEXT)
    e164, sms = parse_phone(phone)
    if not sms:
        return
    _subject, body = confirmation_message(request, channel="sms")
    if texts.send(session, kind="callback_confirmation", to=e164, phone_index=request.phone_index,
                  on_file=_on_file(session, request), body=body, language=request.language):
        request.confirmed_at = now


def local_time(value: datetime, language: str) -> str:
    from babel.dates import format_datetime

    return format_datetime(value.astimezone(LOCAL), format="EEEE d MMMM, HH:mm",
                           locale="cy" if language == "cy" else "en_GB")


def confirmation_message(request: CallbackRequest, *, channel: str) -> tuple[str, str]:
    """(subject, body) confirming a request, in the language it was made in."""
    settings = get_settings()
    _ = translations(request.language).gettext
    values = {"reference": request.reference, "start": local_time(request.window_start, request.language),
              "end": local_time(request.window_end, request.language),
              "org": settings.organisation_name(request.language),
              "cancel_url": settings.PUBLIC_BASE_URL.rstrip("/") + "/callback/cancel"}
    if channel == "sms":
        return "", _("{org}: we will call you back between {start} and {end}. Reference {reference}. We will say "
                     "your passphrase first. To cancel: {cancel_url}").format(**values)
    subject = _("Your callback request {reference}").format(**values)
    body = _("We will call you back between {start} and {end}.\n\nYour reference is {reference}. The person who "
             "calls will say your passphrase first: if they do not, hang up.\n\nTo cancel, go to {cancel_url} and "
             "give this reference and your phone number.").format(**values)
    return subject, body


# --- reading and cancelling ------------------------------------------------------------------------------
def open_request_for(session: Session, *, member_id: int | None = None,
                     phone: str | None = None) -> CallbackRequest | None:
    """The open (waiting or claimed) request of a member (made signed in, or before with their phone on file), or
    for a phone number."""
    repo = CallbackRepository(session)
    if member_id is not None:
        return repo.open_for_member_or_phone(member_id, _phone_index_on_file(session, member_id))
    if phone is not None:
        return repo.open_for_phone(pii.phone_index(parse_phone(phone)[0]))
    return None


def by_reference(session: Session, *, reference: str) -> CallbackRequest | None:
    """A request by its reference (as typed or printed)."""
    return CallbackRepository(session).by_reference(normalise_reference(reference))


def prefill_for_member(session: Session, *, member_id: int) -> dict[str, str]:
    """A signed-in member's name and phone, to fill in their request form."""
    profile = member_service.profile(session, member_id)
    if profile is None:
        return {}
    return {"name": f"{profile.first_name} {profile.last_name}".strip(), "phone": profile.phone or ""}


def _matching(session: Session, *, reference: str, phone: str) -> CallbackRequest:
    """The open request with this reference, made with this phone (locked), or CallbackNotFound."""
    try:
        e164, _sms = parse_phone(phone)
    except CallbackInvalid as exc:
        raise CallbackNotFound("no open request with that reference and phone") from exc
    request = CallbackRepository(session).by_reference(normalise_reference(reference), lock=True)
    if request is None or request.phone_index != pii.phone_index(e164) or request.status not in OPEN_STATUSES:
        raise CallbackNotFound("no open request with that reference and phone")
    return request


def well_formed_reference(raw: str) -> bool:
    """Whether what was typed reads as a reference at all (CB- and eight characters of our alphabet)."""
    value = normalise_reference(raw)
    return len(value) == 12 and all(ch in _ALPHABET for ch in value[3:].replace("-", ""))


def owned_request(session: Session, *, member_id: int | None, reference: str) -> CallbackRequest | None:
    """The signed-in member's own request with this reference (so its phone may be shown to them)."""
    if member_id is None:
        return None
    found = by_reference(session, reference=reference)
    return found if found is not None and _theirs(session, found, member_id=member_id) else None


def cancel_callback(session: Session, *, reference: str, phone: str, actor: str = "public") -> CallbackRequest:
    """Cancel an open request; the reference and the phone it was made with must both match."""
    request = _matching(session, reference=reference, phone=phone)
    request.status = CallbackStatus.CANCELLED
    request.closed_at = utcnow()
    request.claimed_by = None
    request.lease_until = None
    audit_service.record(session, actor=actor, action="callback.cancelled", subject=f"callback:{request.id}")
    return request


def change_callback(session: Session, *, reference: str, phone: str, window_start: datetime, window_end: datetime,
                    actor: str = "public") -> CallbackRequest:
    """Move a waiting request to a new window (checked as a new one); the reference and phone must match."""
    now = utcnow()
    request = _matching(session, reference=reference, phone=phone)
    if request.status != CallbackStatus.WAITING:
        raise CallbackInvalid("window_start", "being_called")
    check_window(window_start, window_end, now=now)
    request.window_start, request.window_end = window_start, window_end
    request.due_at = _due(window_start, window_end, request.priority, now=now)
    request.updated_at = now
    audit_service.record(session, actor=actor, action="callback.changed", subject=f"callback:{request.id}")
    e164, sms = parse_phone(details(request).phone)
    _confirm(session, request, phone=e164, sms=sms, now=now)
    return request


@dataclass(frozen=True)
class MemberCallback:
    """A signed-in member's latest request, for their status page."""

    reference: str
    status: str  # waiting, claimed, closed, cancelled
    start: datetime
    end: datetime
    is_open: bool
    can_change: bool


def member_callback(session: Session, *, member_id: int) -> MemberCallback | None:
    """The member's open request, else their latest closed or cancelled one (either made signed in, or before
    signing in with the phone on file for them)."""
    repo = CallbackRepository(session)
    phone_index = _phone_index_on_file(session, member_id)
    found = (repo.open_for_member_or_phone(member_id, phone_index)
             or repo.latest_for_member_or_phone(member_id, phone_index))
    if found is None:
        return None
    return MemberCallback(found.reference, found.status, found.window_start, found.window_end,
                          found.status in OPEN_STATUSES, found.status == CallbackStatus.WAITING)


def moved_message(request: CallbackRequest, *, call_at: datetime, channel: str) -> tuple[str, str]:
    """(subject, body) telling the member the helpline moved their call, in the request's language."""
    settings = get_settings()
    _ = translations(request.language).gettext
    values = {"reference": request.reference, "when": local_time(call_at, request.language),
              "org": settings.organisation_name(request.language),
              "url": settings.PUBLIC_BASE_URL.rstrip("/") + "/callback/change"}
    if channel == "sms":
        return "", _("{org}: as agreed, we will call you again from {when} about request {reference}. We will say "
                     "your passphrase first. To change it: {url}").format(**values)
    subject = _("We have moved your call back ({reference})").format(**values)
    body = _("As agreed on the phone, we will call you again from {when} about your request {reference}. The "
             "person who calls will say your passphrase first: if they do not, hang up.\n\nTo change the time or "
             "cancel, go to {url} and give this reference and your phone number.").format(**values)
    return subject, body


def tell_member_call_moved(session: Session, *, request: CallbackRequest, call_at: datetime) -> None:
    """Tell the member an agent moved their call: by the email on file, else by text to the phone given.

    Staff moved it after speaking to them, so the text counts towards the phone's limit but is never withheld.
    """
    email = _email_on_file(session, request)
    if email is not None:
        subject, body = moved_message(request, call_at=call_at, channel="email")
        transactional.queue_message(session, kind="callback_moved", channel="email", to=email, subject=subject,
                                    body=body, language=request.language)
        return
    try:
        e164, sms = parse_phone(details(request).phone)
    except CallbackInvalid:  # a number no longer valid (numbering plans change): nothing to text
        return
    if sms:
        _subject, body = moved_message(request, call_at=call_at, channel="sms")
        texts.send(session, kind="callback_moved", to=e164, phone_index=request.phone_index,
                   on_file=_on_file(session, request), body=body, language=request.language, limited=False)


@dataclass(frozen=True)
class CallGuidance:
    """What to tell a caller about one exposed data category."""

    category: str  # the category's name
    guidance: Markup  # the same words as the status page and notices (`incident_service.guidance_sources`)


def call_guidance(session: Session, *, member_id: int | None) -> list[CallGuidance]:
    """Per data category exposed of this member, what to tell them: one source with pages and notices, so the
    helpline never says something else. Empty for no member or nothing exposed."""
    if member_id is None:
        return []
    categories = incident_service.categories_by_id(session)
    found: list[CallGuidance] = []
    for incident_id, category_ids in sorted(member_service.exposures_of(session, member_id=member_id).items()):
        guidance = incident_service.category_guidance(session, incident_id=incident_id, lang="en")
        for category_id in category_ids:
            item = CallGuidance(categories[category_id].name, guidance[categories[category_id].code])
            if item not in found:
                found.append(item)
    return found


@dataclass(frozen=True)
class CallbackDetails:
    """A request's sealed fields opened, for the person it belongs to or the agent who calls."""

    name: str
    phone: str
    passphrase: str


def details(request: CallbackRequest) -> CallbackDetails:
    """Open a request's name, phone and passphrase (callers audit the view)."""
    keys = pii.keyring()
    return CallbackDetails(keys.decrypt(request.name_enc, context=NAME_CONTEXT),
                           keys.decrypt(request.phone_enc, context=PHONE_CONTEXT),
                           keys.decrypt(request.passphrase_enc, context=PASSPHRASE_CONTEXT))
