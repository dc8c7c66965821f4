"""Bulk imports of members and exposures from CSV.

A file is streamed row by row into a staging table in chunks, and each rejected row goes straight
to the caller's sink (the report file), so memory stays flat whatever the file's size and however
many of its rows are refused. Rows are then checked against each other and the database in SQL and
merged in the same transaction. The caller's transaction is therefore all-or-nothing: a failure
leaves the database as it was.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import IO, Any

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.branches import service as branch_service
from app.config import get_settings
from app.incidents import service as incident_service
from app.kit.contacts import ContactError, check_phone, normalise_email
from app.kit.crypto import Keyring
from app.kit.csvsafe import CsvFileError, read_rows, starts_like_formula
from app.members import pii
from app.members.repository import EXPOSURE_STAGE, MEMBER_STAGE, MemberRepository

MEMBER_COLUMNS = ["membership_number", "first_name", "last_name", "email", "phone", "branch_code", "rank",
                  "preferred_language"]
EXPOSURE_COLUMNS = ["membership_number", "incident_code", "categories"]
MAX_LEN = {"membership_number": 32, "first_name": 100, "last_name": 100, "email": 254, "phone": 32,
           "rank": 50, "branch_code": 32, "preferred_language": 2, "incident_code": 32, "categories": 500}
LANGUAGES = ("en", "cy")
CHUNK = 5000
# Membership numbers are ASCII letters and digits, perhaps with '-' or '/': nothing that only looks like them.
_MEMBERSHIP_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9/-]*")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Controls, format characters (bidi overrides and isolates, zero-width), line and paragraph separators,
# private-use, surrogate and unassigned code points: invisible or misleading in a notice's text.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
KEEP_REJECTIONS = 1000

__all__ = ["CsvFileError", "ImportSummary", "Rejection", "import_exposures", "import_members"]


@dataclass(frozen=True)
class Rejection:
    line: int
    column: str
    reason: str


@dataclass
class ImportSummary:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected_rows: int = 0
    # Members only: imported phone numbers that cannot take SMS (kept for the helpline to call).
    phones_without_sms: int | None = None
    # The first KEEP_REJECTIONS reasons, for callers without a sink; every reason goes to the sink.
    rejections: list[Rejection] = field(default_factory=list)
    written: bool = False

    @property
    def all_rejected(self) -> bool:
        return self.rows > 0 and self.rejected_rows >= self.rows

    def as_dict(self) -> dict[str, Any]:
        counts = {"rows": self.rows, "inserted": self.inserted, "updated": self.updated,
                  "unchanged": self.unchanged, "removed": self.removed, "rejected_rows": self.rejected_rows}
        if self.phones_without_sms is not None:
            counts["phones_without_sms"] = self.phones_without_sms
        return {**counts, "written": self.written}


RejectSink = Callable[[Rejection], None]
Progress = Callable[[int], None]


class _Rejections:
    """Passes each reason to the caller's sink as it comes, keeping only the first few in memory."""

    def __init__(self, summary: ImportSummary, sink: RejectSink | None) -> None:
        self.summary, self.sink = summary, sink

    def add(self, line: int, column: str, reason: str) -> None:
        rejection = Rejection(line, column, reason)
        if len(self.summary.rejections) < KEEP_REJECTIONS:
            self.summary.rejections.append(rejection)
        if self.sink:
            self.sink(rejection)

    def row(self, line: int, errors: Iterable[tuple[str, str]]) -> None:
        """One rejected row with all its reasons (counted once)."""
        self.summary.rejected_rows += 1
        for column, reason in errors:
            self.add(line, column, reason)

    def repeated(self, rows: Iterator[tuple[int, int, Any]], what: str) -> None:
        """Reject every line of each group of (line, group size, key) rows, in key then line order."""
        for _key, group in groupby(rows, key=lambda r: r[2]):
            shown: list[int] = []
            size = 0
            for line, size, _ in group:
                if len(shown) < 4:
                    shown.append(line)
                    if len(shown) < 4:
                        continue
                    for earlier in shown:
                        self._repeated_line(earlier, shown, size, what)
                else:
                    self._repeated_line(line, shown, size, what)
            if len(shown) < 4:
                for earlier in shown:
                    self._repeated_line(earlier, shown, size, what)

    def _repeated_line(self, line: int, shown: list[int], size: int, what: str) -> None:
        # Name a few of the other lines, not all: a group can be as long as the file.
        others = [x for x in shown if x != line][:3]
        more = size - 1 - len(others)
        listed = ", ".join(map(str, others)) + (f" and {more:,} more" if more > 0 else "")
        self.row(line, [("membership_number", f"{what} repeated in this file (also line {listed})")])


def _invisible(value: str) -> str | None:
    """Why a value holds a character that must not reach a notice, or None."""
    if value.isascii():
        found = _ASCII_CONTROL.search(value)
        return None if found is None else _describe(found.group())
    if value.isprintable():
        return None
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return _describe(char)
    return None  # only non-ASCII spaces, which are harmless


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"contains an invisible or control character (U+{ord(char):04X}{' ' + name if name else ''})"


def _common_cell_errors(row: dict[str, str], columns: list[str]) -> Iterator[tuple[str, str]]:
    for col in columns:
        value = row.get(col, "")
        if not value:
            continue
        if len(value) > MAX_LEN[col]:
            yield col, f"longer than {MAX_LEN[col]} characters"
        elif starts_like_formula(value) and not (col == "phone" and value[1:2].isdigit()):
            yield col, f"starts with {value[0]!r}, which a spreadsheet would run as a formula"
        elif (problem := _invisible(value)) is not None:
            yield col, problem
        elif col == "membership_number" and not _MEMBERSHIP_NUMBER.fullmatch(value):
            yield col, "may hold only the letters A-Z, the digits 0-9, '-' and '/'"


@dataclass(frozen=True)
class MemberChecks:
    """What checking a member row needs, picklable so that other processes can check rows too."""

    branches: dict[str, tuple[int, str]]  # lower-cased code -> (id, default language)
    keyring: Keyring
    allow_drama: bool

    @classmethod
    def load(cls, session: Session) -> MemberChecks:
        branches = {code.lower(): (b.id, b.default_language)
                    for code, b in branch_service.branches_by_code(session).items()}
        return cls(branches, pii.keyring(), get_settings().accept_drama_numbers)


def member_row(row: dict[str, str], checks: MemberChecks) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The staged form of one CSV row (contacts sealed and indexed), or the reasons it is refused."""
    errors = list(_common_cell_errors(row, MEMBER_COLUMNS))
    bad = {c for c, _ in errors}
    for col in ("membership_number", "first_name", "last_name", "branch_code"):
        if not row[col] and col not in bad:
            errors.append((col, "required"))
            bad.add(col)
    branch = checks.branches.get(row["branch_code"].lower())
    if row["branch_code"] and "branch_code" not in bad and branch is None:
        errors.append(("branch_code", f"unknown branch {row['branch_code']!r}"))
    language = row["preferred_language"].lower() or (branch[1] if branch else "en")
    if "preferred_language" not in bad and language not in LANGUAGES:
        errors.append(("preferred_language", "must be 'en' or 'cy'"))
    email = phone = None
    if row["email"] and "email" not in bad:
        try:
            email = normalise_email(row["email"])
        except ContactError as exc:
            errors.append(("email", str(exc)))
    if row["phone"] and "phone" not in bad:
        try:
            phone = check_phone(row["phone"], allow_drama=checks.allow_drama)
        except ContactError as exc:
            errors.append(("phone", str(exc)))
    if not row["email"] and not row["phone"]:
        errors.append(("email", "neither email nor phone given; at least one is required"))
    if errors:
        return None, errors
    assert branch is not None
    ring = checks.keyring
    return {
        "membership_number": row["membership_number"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "rank": row["rank"],
        "branch_id": branch[0],
        "preferred_language": language,
        "email_enc": ring.encrypt(email, context=pii.EMAIL_CONTEXT) if email else None,
        "email_index": ring.blind_index(email, kind="email") if email else None,
        "phone_enc": ring.encrypt(phone.e164, context=pii.PHONE_CONTEXT) if phone else None,
        "phone_index": ring.blind_index(phone.e164, kind="phone") if phone else None,
        "phone_sms": phone.sms if phone else None,
        "pii_key_id": ring.current_id,
    }, []


def _stage_file(
    repo: MemberRepository,
    table: Any,
    *,
    source: IO[bytes],
    columns: list[str],
    check: Callable[[dict[str, str]], tuple[list[dict[str, Any]], list[tuple[str, str]]]],
    summary: ImportSummary,
    rejects: _Rejections,
    on_progress: Progress | None,
) -> None:
    """Stream the file through `check` into the staging table, in chunks."""
    repo.create_stage(table)
    buffer: list[dict[str, Any]] = []
    for line, row, problem in read_rows(source, required=columns):
        summary.rows += 1
        if row is None:
            rejects.row(line, [("", problem or "unreadable row")])
        else:
            staged, errors = check(row)
            if errors:
                rejects.row(line, errors)
            buffer.extend({"line_no": line, **item} for item in staged)
        if len(buffer) >= CHUNK or (on_progress and summary.rows % CHUNK == 0):
            repo.stage_rows(table, buffer)
            buffer.clear()
            if on_progress:
                on_progress(summary.rows)
    repo.stage_rows(table, buffer)
    if on_progress:
        on_progress(summary.rows)


def import_members(
    session: Session,
    *,
    source: IO[bytes],
    actor: str,
    strict: bool = False,
    on_reject: RejectSink | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Upsert members from a CSV by membership number; importing the same file twice changes nothing.

    Raises CsvFileError when the file as a whole is unusable. With `strict`, any rejected row means
    nothing is written; when every row is rejected, nothing is written either.
    """
    summary = ImportSummary(phones_without_sms=0)
    rejects = _Rejections(summary, on_reject)
    repo = MemberRepository(session)
    checks = MemberChecks.load(session)

    def check(row: dict[str, str]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        staged, errors = member_row(row, checks)
        return ([staged] if staged else []), errors

    _stage_file(repo, MEMBER_STAGE, source=source, columns=MEMBER_COLUMNS, check=check, summary=summary,
                rejects=rejects, on_progress=on_progress)
    rejects.repeated(repo.repeated_lines(MEMBER_STAGE, ["membership_number"]), "membership number")
    repo.unstage_repeated(MEMBER_STAGE, ["membership_number"])

    if (strict and summary.rejected_rows) or summary.all_rejected:
        repo.drop_stage(MEMBER_STAGE)
        return summary
    staged = repo.stage_count(MEMBER_STAGE)
    summary.phones_without_sms = repo.staged_phones_without_sms()
    summary.inserted, summary.updated = repo.count_member_changes()
    summary.unchanged = staged - summary.inserted - summary.updated
    repo.merge_staged_members()
    repo.drop_stage(MEMBER_STAGE)
    repo.refresh_statistics(members=True)
    summary.written = True
    audit_service.record(session, actor=actor, action="members.import", **summary.as_dict())
    return summary


def _exposure_rows(
    row: dict[str, str], incidents: dict[str, Any], categories: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    errors = list(_common_cell_errors(row, EXPOSURE_COLUMNS))
    bad = {c for c, _ in errors}
    if not row["membership_number"] and "membership_number" not in bad:
        errors.append(("membership_number", "required"))
    incident = incidents.get(row["incident_code"])
    if "incident_code" not in bad and incident is None:
        errors.append(("incident_code", f"unknown incident {row['incident_code']!r}"))
    codes = [c.strip() for c in row["categories"].split(";") if c.strip()]
    if "categories" not in bad:
        if not codes:
            errors.append(("categories", "no category given"))
        unknown = [c for c in codes if c not in categories]
        if unknown:
            errors.append(("categories", f"unknown categories: {', '.join(unknown)}"))
    if errors or incident is None:
        return [], errors
    return [{"membership_number": row["membership_number"], "incident_id": incident.id,
             "category_id": categories[c].id} for c in dict.fromkeys(codes)], []


def import_exposures(
    session: Session,
    *,
    source: IO[bytes],
    actor: str,
    strict: bool = False,
    on_reject: RejectSink | None = None,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Set, per member and incident in the file, exactly the categories the file lists."""
    summary = ImportSummary()
    rejects = _Rejections(summary, on_reject)
    repo = MemberRepository(session)
    incidents = incident_service.incidents_by_code(session)
    categories = incident_service.categories_by_code(session)
    _stage_file(repo, EXPOSURE_STAGE, source=source, columns=EXPOSURE_COLUMNS,
                check=lambda row: _exposure_rows(row, incidents, categories), summary=summary, rejects=rejects,
                on_progress=on_progress)

    for line in repo.unknown_member_lines():
        rejects.row(line, [("membership_number", "no member with this membership number")])
    repo.unstage_unknown_members()
    # One row per (member, incident): a second row for the same pair would silently merge otherwise.
    pair = ["membership_number", "incident_id"]
    rejects.repeated(repo.repeated_lines(EXPOSURE_STAGE, pair), "member and incident")
    repo.unstage_repeated(EXPOSURE_STAGE, pair)

    if (strict and summary.rejected_rows) or summary.all_rejected:
        repo.drop_stage(EXPOSURE_STAGE)
        return summary
    summary.inserted, summary.removed = repo.count_exposure_changes()
    repo.merge_staged_exposures()
    repo.drop_stage(EXPOSURE_STAGE)
    repo.refresh_statistics(exposures=True)
    summary.written = True
    audit_service.record(session, actor=actor, action="exposures.import", **summary.as_dict())
    return summary
