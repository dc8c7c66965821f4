"""A synthetic organisation for the embedded default and for trying the portal.

Every contact is fictional: email addresses on the reserved example.org domain, and for each member with a
phone a number of their own in 07700 9xxxxx, the block around Ofcom's drama range that no network holds
(100,000 numbers; imports accept them only outside production). The demo runs with the outbox provider, so
nothing is ever sent to these numbers.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth import staff as staff_service
from app.auth.models import Role
from app.branches import service as branch_service
from app.branches.data import OFFICER_WEIGHTS
from app.demo.incident import write_demo_incident
from app.members import imports

INCIDENT_CODE = "hq-2019"
FIRST = ["Aled", "Amy", "Bethan", "Carys", "Chris", "Daniel", "David", "Dylan", "Emma", "Gareth", "Grace", "Hannah",
         "Ian", "James", "Jane", "John", "Karen", "Kate", "Lee", "Lisa", "Mark", "Megan", "Michael", "Nia", "Owain",
         "Paul", "Priya", "Rhys", "Sarah", "Sian", "Simon", "Sophie", "Tom", "Zara", "Mohammed", "Aisha"]
LAST = ["Ahmed", "Baker", "Davies", "Edwards", "Evans", "Green", "Hall", "Hughes", "Jenkins", "Jones", "Khan",
        "Lewis", "Morgan", "Morris", "Patel", "Price", "Roberts", "Smith", "Taylor", "Thomas", "Walker", "Williams",
        "Wilson", "Wright", "Young", "O'Brien", "Singh", "Clarke"]
RANKS = [("Constable", 78), ("Sergeant", 14), ("Inspector", 6), ("Chief Inspector", 2)]
STAFF = [("admin@example.org", Role.ADMIN), ("approver@example.org", Role.ADMIN),
         ("supervisor@example.org", Role.SUPERVISOR), ("agent@example.org", Role.AGENT),
         ("auditor@example.org", Role.AUDITOR), ("viewer@example.org", Role.BRANCH_VIEWER)]


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    password: str
    totp_secret: str
    totp_uri: str


@dataclass(frozen=True)
class DemoMember:
    """A member to try the status check as: what to type at /check and where their code arrives."""

    kind: str  # "email", "sms" (affected, reached by SMS only) or "unaffected"
    membership_number: str
    email: str
    phone: str


@dataclass(frozen=True)
class DemoResult:
    members: imports.ImportSummary
    exposures: imports.ImportSummary
    logins: list[DemoLogin]
    to_try: list[DemoMember]


def _lines(rows: Iterator[list[str]], header: list[str]) -> Iterator[bytes]:
    yield (",".join(header) + "\n").encode()
    for row in rows:
        yield (",".join(row) + "\n").encode()


PHONES = 100_000  # 07700 900000-999999: one number per member who has a phone, never shared
# Members who joined after the attack, so no breach data of theirs was exposed: one per thousand affected,
# numbered after them (a demo of fewer than 1,000 members has none, and everyone in it is affected).
UNAFFECTED_PER = 1000


def _unaffected(count: int) -> int:
    return count // UNAFFECTED_PER


def _members(count: int, rng: random.Random, branches: list[tuple[str, str]],
             to_try: dict[str, DemoMember]) -> Iterator[list[str]]:
    """`count` affected members, then the unaffected ones; the first of each kind is noted in `to_try`."""
    codes = [c for c, _ in branches]
    weights = [OFFICER_WEIGHTS[c] for c in codes]
    langs = dict(branches)
    ranks, rank_weights = zip(*RANKS, strict=True)
    phones = 0
    for i in range(count + _unaffected(count)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        branch = rng.choices(codes, weights)[0]
        has_email = rng.random() > 0.03 or phones == PHONES
        has_phone = (not has_email or rng.random() < 0.7) and phones < PHONES
        email = f"{first}.{last}.{i}@{branch}.example.org".lower().replace("'", "") if has_email else ""
        phone = f"07700 9{phones // 1000:02d}{phones % 1000:03d}" if has_phone else ""
        phones += has_phone
        lang = "cy" if langs[branch] == "cy" and rng.random() < 0.3 else "en"
        number = f"{100000 + i}"
        kind = "unaffected" if i >= count else "email" if email else "sms"
        if kind not in to_try and (kind != "email" or lang == "en"):
            to_try[kind] = DemoMember(kind, number, email, phone)
        yield [number, first, last, email, phone, branch, rng.choices(ranks, rank_weights)[0], lang]


def _exposures(count: int, rng: random.Random) -> Iterator[list[str]]:
    for i in range(count):
        cats = ["police_email", "ni_number"]
        roll = rng.random()
        if roll < 0.08:
            cats += ["card_details", "home_address"]
        elif roll < 0.13:
            cats += ["bank_details", "home_address"]
        yield [f"{100000 + i}", INCIDENT_CODE, ";".join(cats)]


def load_demo(session: Session, *, members: int = 120_000, seed: int = 2019, with_staff: bool = True) -> DemoResult:
    """Load (or refresh) the demo organisation, incident, exposures and one staff login per role."""
    rng = random.Random(seed)
    listed = branch_service.list_branches(session)
    branches = [(b.code, b.default_language) for b in listed]
    write_demo_incident(session, code=INCIDENT_CODE)
    to_try: dict[str, DemoMember] = {}
    member_summary = imports.import_members(
        session, source=_lines(_members(members, rng, branches, to_try), imports.MEMBER_COLUMNS),  # type: ignore[arg-type]
        actor="demo")
    exposure_summary = imports.import_exposures(
        session, source=_lines(_exposures(members, rng), imports.EXPOSURE_COLUMNS), actor="demo")  # type: ignore[arg-type]
    logins = []
    if with_staff:
        # The branch viewer sees the counts of the branch with the most members.
        biggest = max(listed, key=lambda b: OFFICER_WEIGHTS.get(b.code, 0))
        for email, role in STAFF:
            branch_id = biggest.id if role is Role.BRANCH_VIEWER else None
            found = auth_service.staff_by_email(session, email)
            if found is not None:
                if branch_id is not None and found.branch_id is None:  # a demo from before viewers had one
                    staff_service.set_staff_branch(session, staff_id=found.id, branch_code=biggest.code, actor="demo")
                continue
            password = secrets.token_urlsafe(12)
            created = auth_service.create_staff(session, email=email, role=role, password=password, actor="demo",
                                                branch_id=branch_id)
            logins.append(DemoLogin(email, role.value, password, created.totp_secret, created.totp_uri))
    order = ("email", "sms", "unaffected")
    return DemoResult(member_summary, exposure_summary, logins, [to_try[k] for k in order if k in to_try])
