"""A synthetic organisation for the embedded default and for trying the portal.

Every contact is fictional: email addresses on the reserved example.org domain and phone numbers
in Ofcom's range set aside for drama (07700 900000-900999).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.auth import service as auth_service
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
class DemoResult:
    members: imports.ImportSummary
    exposures: imports.ImportSummary
    logins: list[DemoLogin]


def _lines(rows: Iterator[list[str]], header: list[str]) -> Iterator[bytes]:
    yield (",".join(header) + "\n").encode()
    for row in rows:
        yield (",".join(row) + "\n").encode()


def _members(count: int, rng: random.Random, branches: list[tuple[str, str]]) -> Iterator[list[str]]:
    codes = [c for c, _ in branches]
    weights = [OFFICER_WEIGHTS[c] for c in codes]
    langs = dict(branches)
    ranks, rank_weights = zip(*RANKS, strict=True)
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        branch = rng.choices(codes, weights)[0]
        has_email = rng.random() > 0.03
        has_phone = not has_email or rng.random() < 0.7
        email = f"{first}.{last}.{i}@{branch}.example.org".lower().replace("'", "") if has_email else ""
        phone = f"07700 900{i % 1000:03d}" if has_phone else ""
        lang = "cy" if langs[branch] == "cy" and rng.random() < 0.3 else "en"
        yield [f"{100000 + i}", first, last, email, phone, branch, rng.choices(ranks, rank_weights)[0], lang]


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
    branches = [(b.code, b.default_language) for b in branch_service.list_branches(session)]
    write_demo_incident(session, code=INCIDENT_CODE)
    member_summary = imports.import_members(
        session, source=_lines(_members(members, rng, branches), imports.MEMBER_COLUMNS),  # type: ignore[arg-type]
        actor="demo")
    exposure_summary = imports.import_exposures(
        session, source=_lines(_exposures(members, rng), imports.EXPOSURE_COLUMNS), actor="demo")  # type: ignore[arg-type]
    logins = []
    if with_staff:
        for email, role in STAFF:
            if auth_service.staff_exists(session, email=email):
                continue
            password = secrets.token_urlsafe(12)
            created = auth_service.create_staff(session, email=email, role=role, password=password, actor="demo")
            logins.append(DemoLogin(email, role.value, password, created.totp_secret, created.totp_uri))
    return DemoResult(member_summary, exposure_summary, logins)
