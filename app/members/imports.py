"""Bulk imports of members and exposures from CSV.

A file is streamed row by row into a staging table in chunks, so memory stays flat whatever its
size; rows are then checked against each other and the database in SQL and merged in the same
transaction. The caller's transaction is therefore all-or-nothing: a failure leaves the database
as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.branches import service as branch_service
from app.incidents import service as incident_service
from app.kit.contacts import ContactError, normalise_email, normalise_phone
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
_CONTROL = re.compile(r"[\x00-\x1f]")

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
    rejections: list[Rejection] = field(default_factory=list)
    written: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "removed": self.removed, "rejected_rows": self.rejected_rows,
                "written": self.written}


RejectSink = Callable[[Rejection], None]
Progress = Callable[[int], None]


class _Rejections:
    """Collects per-row reasons, passing each to the caller's sink (a report file) as it comes."""

    def __init__(self, summary: ImportSummary, sink: RejectSink | None, keep: int = 1000) -> None:
        self.summary, self.sink, self.keep = summary, sink, keep
        self.lines: set[int] = set()

    def add(self, line: int, column: str, reason: str) -> None:
        rejection = Rejection(line, column, reason)
        if line not in self.lines:
            self.lines.add(line)
            self.summary.rejected_rows += 1
        if len(self.summary.rejections) < self.keep:
            self.summary.rejections.append(rejection)
        if self.sink:
            self.sink(rejection)


def _common_cell_errors(row: dict[str, str], columns: list[str]) -> Iterator[tuple[str, str]]:
    for col in columns:
        value = row.get(col, "")
        if len(value) > MAX_LEN[col]:
            yield col, f"longer than {MAX_LEN[col]} characters"
        elif value and starts_like_formula(value) and not (col == "phone" and value[1:2].isdigit()):
            yield col, f"starts with {value[0]!r}, which a spreadsheet would run as a formula"
        elif _CONTROL.search(value):
            yield col, "contains control characters"


def _member_row(row: dict[str, str], branches: dict[str, Any]) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    errors = list(_common_cell_errors(row, MEMBER_COLUMNS))
    bad = {c for c, _ in errors}
    for col in ("membership_number", "first_name", "last_name", "branch_code"):
        if not row[col] and col not in bad:
            errors.append((col, "required"))
            bad.add(col)
    branch = branches.get(row["branch_code"].lower())
    if row["branch_code"] and "branch_code" not in bad and branch is None:
        errors.append(("branch_code", f"unknown branch {row['branch_code']!r}"))
    language = row["preferred_language"].lower() or (branch.default_language if branch else "en")
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
            phone = normalise_phone(row["phone"])
        except ContactError as exc:
            errors.append(("phone", str(exc)))
    if not row["email"] and not row["phone"]:
        errors.append(("email", "neither email nor phone given; at least one is required"))
    if errors:
        return None, errors
    assert branch is not None
    return {
        "membership_number": row["membership_number"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "rank": row["rank"],
        "branch_id": branch.id,
        "preferred_language": language,
        "email_enc": pii.seal_email(email) if email else None,
        "email_index": pii.email_index(email) if email else None,
        "phone_enc": pii.seal_phone(phone) if phone else None,
        "phone_index": pii.phone_index(phone) if phone else None,
        "pii_key_id": pii.current_key_id(),
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
            rejects.add(line, "", problem or "unreadable row")
        else:
            staged, errors = check(row)
            for col, reason in errors:
                rejects.add(line, col, reason)
            buffer.extend({"line_no": line, **item} for item in staged)
        if len(buffer) >= CHUNK:
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
    nothing is written.
    """
    summary = ImportSummary()
    rejects = _Rejections(summary, on_reject)
    repo = MemberRepository(session)
    branches = branch_service.branches_by_code(session)

    def check(row: dict[str, str]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        staged, errors = _member_row(row, branches)
        return ([staged] if staged else []), errors

    _stage_file(repo, MEMBER_STAGE, source=source, columns=MEMBER_COLUMNS, check=check, summary=summary,
                rejects=rejects, on_progress=on_progress)
    duplicates = repo.stage_duplicates(MEMBER_STAGE, ["membership_number"])
    for line, lines in duplicates:
        others = ", ".join(str(x) for x in lines if x != line)
        rejects.add(line, "membership_number", f"membership number repeated in this file (also line {others})")
    repo.unstage_lines(MEMBER_STAGE, (line for line, _ in duplicates))

    if strict and summary.rejected_rows:
        repo.drop_stage(MEMBER_STAGE)
        return summary
    staged = repo.stage_count(MEMBER_STAGE)
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

    unknown_lines = repo.unknown_member_lines()
    for line in unknown_lines:
        rejects.add(line, "membership_number", "no member with this membership number")
    repo.unstage_lines(EXPOSURE_STAGE, unknown_lines)
    # One row per (member, incident): a second row for the same pair would silently merge otherwise.
    pair_lines = _distinct_line_groups(repo.stage_duplicates(EXPOSURE_STAGE, ["membership_number", "incident_id"]))
    for line, lines in pair_lines:
        others = ", ".join(str(x) for x in lines if x != line)
        rejects.add(line, "membership_number", f"member and incident repeated in this file (also line {others})")
    repo.unstage_lines(EXPOSURE_STAGE, (line for line, _ in pair_lines))

    if strict and summary.rejected_rows:
        repo.drop_stage(EXPOSURE_STAGE)
        return summary
    summary.inserted, summary.removed = repo.count_exposure_changes()
    repo.merge_staged_exposures()
    repo.drop_stage(EXPOSURE_STAGE)
    repo.refresh_statistics(exposures=True)
    summary.written = True
    audit_service.record(session, actor=actor, action="exposures.import", **summary.as_dict())
    return summary


def _distinct_line_groups(groups: list[tuple[int, list[int]]]) -> list[tuple[int, list[int]]]:
    # A line stages one row per category, so the same line can appear several times in a group.
    out: dict[int, list[int]] = {}
    for line, lines in groups:
        out[line] = sorted(set(lines))
    return [(line, lines) for line, lines in out.items() if len(lines) > 1]
