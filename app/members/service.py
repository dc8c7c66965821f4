"""Members as other domains see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.members import pii
from app.members.repository import AudienceRepository, MemberRepository


def count_members(session: Session) -> int:
    """How many members we hold."""
    return MemberRepository(session).count()


@dataclass(frozen=True)
class AudienceMember:
    member_id: int
    branch_id: int
    language: str
    email_index: str | None
    phone_index: str | None  # only of a phone that can take SMS: the SMS channel's address
    category_ids: tuple[int, ...]  # exposed in the incident, ascending


def audience_page(
    session: Session, *, incident_id: int, category_ids: Sequence[int] = (), branch_ids: Sequence[int] = (),
    language: str | None = None, exclude_member_ids: Any = None, after_id: int = 0, limit: int = 5000,
) -> list[AudienceMember]:
    """The next `limit` members (by id, after `after_id`) exposed in the incident and matching the filters.

    `exclude_member_ids` is a subquery of member ids to leave out (e.g. those already reached).
    """
    rows = AudienceRepository(session).audience_page(
        incident_id=incident_id, category_ids=category_ids, branch_ids=branch_ids, language=language,
        exclude_member_ids=exclude_member_ids, after_id=after_id, limit=limit)
    parsed: dict[str, tuple[int, ...]] = {}  # a few distinct sets of categories cover most members
    members = []
    for r in rows:
        ids = parsed.get(r.category_ids)
        if ids is None:
            ids = parsed[r.category_ids] = tuple(sorted(int(c) for c in (r.category_ids or "").split(",") if c))
        members.append(AudienceMember(r.id, r.branch_id, r.preferred_language, r.email_index, r.phone_index, ids))
    return members


@dataclass(frozen=True)
class MemberContact:
    member_id: int
    membership_number: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    email_index: str | None
    phone_index: str | None  # only of a phone that can take SMS: the SMS channel's address
    branch_id: int
    branch_code: str
    branch_name: str
    # False: a landline or other number the helpline can call but SMS cannot reach; None: not yet checked.
    phone_sms: bool | None = None


def contacts(session: Session, member_ids: Sequence[int], *, open_email: bool = True,
             open_phone: bool = True) -> dict[int, MemberContact]:
    """Decrypted contact details of these members, for sending to them (never for display)."""
    if not member_ids:
        return {}
    found = {}
    for r in AudienceRepository(session).contact_rows(member_ids):
        found[r.id] = MemberContact(
            r.id, r.membership_number, r.first_name, r.last_name,
            pii.open_email(r.email_enc) if open_email else None,
            pii.open_phone(r.phone_enc) if open_phone else None,
            r.email_index, r.phone_index, r.branch_id, r.branch_code, r.branch_name, r.phone_sms)
    return found


@dataclass(frozen=True)
class MemberProfile:
    member_id: int
    first_name: str
    last_name: str
    language: str
    email: str | None
    phone: str | None
    sms_capable: bool  # the phone can take text messages


def find_member(session: Session, *, membership_number: str | None = None, email: str | None = None) -> int | None:
    """The id of the member with this membership number, or this normalised email (by its blind index)."""
    repo = MemberRepository(session)
    if membership_number is not None:
        member = repo.by_membership_number(membership_number)
    elif email is not None:
        member = repo.by_email_index(pii.email_index(email))
    else:
        return None
    return None if member is None else member.id


def profile(session: Session, member_id: int) -> MemberProfile | None:
    """A member's name, language and decrypted contact details (to send to them or prefill a form)."""
    member = MemberRepository(session).get(member_id)
    if member is None:
        return None
    phone = pii.open_phone(member.phone_enc)
    # Unknown (imported before the check was recorded) counts as able to take SMS.
    sms = phone is not None and member.phone_sms is not False
    return MemberProfile(member.id, member.first_name, member.last_name, member.preferred_language,
                         pii.open_email(member.email_enc), phone, sms)


def exposures_of(session: Session, *, member_id: int) -> dict[int, list[int]]:
    """What was exposed of this member: incident id -> data category ids."""
    found: dict[int, list[int]] = {}
    for incident_id, category_id in MemberRepository(session).exposures_of(member_id):
        found.setdefault(incident_id, []).append(category_id)
    return found


def email_index_of(address: str) -> str | None:
    """The blind index of an address as a provider reports it (None if it is not an address)."""
    from app.kit.contacts import ContactError, normalise_email

    try:
        return pii.email_index(normalise_email(address))
    except (ContactError, ValueError):
        return None


def phone_index_of(number: str) -> str | None:
    from app.kit.contacts import ContactError, normalise_phone

    try:
        return pii.phone_index(normalise_phone(number))
    except (ContactError, ValueError):
        return None
