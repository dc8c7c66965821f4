"""Checking the rows of an import file: one row at a time, in whichever process holds the chunk.

Everything here is a pure function of a row and a picklable `Checks`, so that a pool of processes can
check, encrypt and index chunks of a big file while the importing process only reads it and writes to
the database.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from app.kit.contacts import ContactError, check_phone, normalise_email
from app.kit.crypto import Keyring
from app.kit.csvsafe import MAX_LINE_BYTES, parse_line
from app.members.pii import EMAIL_CONTEXT, PHONE_CONTEXT

MEMBER_COLUMNS = ["membership_number", "first_name", "last_name", "email", "phone", "branch_code", "rank",
                  "preferred_language"]
EXPOSURE_COLUMNS = ["membership_number", "incident_code", "categories"]
MAX_LEN = {"membership_number": 32, "first_name": 100, "last_name": 100, "email": 254, "phone": 32,
           "rank": 50, "branch_code": 32, "preferred_language": 2, "incident_code": 32, "categories": 500}
LANGUAGES = ("en", "cy")
FORMULA_STARTS = frozenset("=+-@\t\r")
# Membership numbers are ASCII letters and digits, perhaps with '-' or '/': nothing that only looks like them.
_MEMBERSHIP_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9/-]*")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Controls, format characters (bidi overrides and isolates, zero-width), line and paragraph separators,
# private-use, surrogate and unassigned code points: invisible or misleading in a notice's text.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})

Errors = list[tuple[str, str]]


def invisible(value: str) -> str | None:
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


def cell_errors(row: dict[str, str], columns: list[str]) -> Errors:
    """Length, formula, character and membership-number checks of every cell."""
    errors: Errors = []
    text = "".join([row[c] for c in columns])
    plain = text.isascii() and _ASCII_CONTROL.search(text) is None  # the common case: one scan for the row
    for col in columns:
        value = row[col]
        if not value:
            continue
        if len(value) > MAX_LEN[col]:
            errors.append((col, f"longer than {MAX_LEN[col]} characters"))
        elif value[0] in FORMULA_STARTS and not (col == "phone" and value[1:2].isdigit()):
            errors.append((col, f"starts with {value[0]!r}, which a spreadsheet would run as a formula"))
        elif not plain and (problem := invisible(value)) is not None:
            errors.append((col, problem))
        elif col == "membership_number" and not _MEMBERSHIP_NUMBER.fullmatch(value):
            errors.append((col, "may hold only the letters A-Z, the digits 0-9, '-' and '/'"))
    return errors


@dataclass(frozen=True)
class MemberChecks:
    """What checking a member row needs. Staged values follow the member staging table's columns."""

    branches: dict[str, tuple[int, str]]  # lower-cased code -> (id, default language)
    keyring: Keyring
    allow_drama: bool
    columns: tuple[str, ...] = tuple(MEMBER_COLUMNS)

    def check(self, row: dict[str, str]) -> tuple[list[tuple[Any, ...]], Errors]:
        staged, errors = member_values(row, self)
        return ([staged] if staged else []), errors


@dataclass(frozen=True)
class ExposureChecks:
    """What checking an exposure row needs: incident and category ids by code."""

    incidents: dict[str, int]
    categories: dict[str, int]
    columns: tuple[str, ...] = tuple(EXPOSURE_COLUMNS)

    def check(self, row: dict[str, str]) -> tuple[list[tuple[Any, ...]], Errors]:
        errors = cell_errors(row, EXPOSURE_COLUMNS)
        bad = {c for c, _ in errors}
        if not row["membership_number"] and "membership_number" not in bad:
            errors.append(("membership_number", "required"))
        incident = self.incidents.get(row["incident_code"])
        if "incident_code" not in bad and incident is None:
            errors.append(("incident_code", f"unknown incident {row['incident_code']!r}"))
        codes = [c.strip() for c in row["categories"].split(";") if c.strip()]
        if "categories" not in bad:
            if not codes:
                errors.append(("categories", "no category given"))
            unknown = [c for c in codes if c not in self.categories]
            if unknown:
                errors.append(("categories", f"unknown categories: {', '.join(unknown)}"))
        if errors or incident is None:
            return [], errors
        return [(row["membership_number"], incident, self.categories[c]) for c in dict.fromkeys(codes)], []


def member_values(row: dict[str, str], checks: MemberChecks) -> tuple[tuple[Any, ...] | None, Errors]:
    """The staged values of one member row (contacts sealed and indexed), or the reasons it is refused."""
    errors = cell_errors(row, MEMBER_COLUMNS)
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
    return (
        row["membership_number"], row["first_name"], row["last_name"], row["rank"], branch[0], language,
        ring.encrypt(email, context=EMAIL_CONTEXT) if email else None,
        ring.blind_index(email, kind="email") if email else None,
        ring.encrypt(phone.e164, context=PHONE_CONTEXT) if phone else None,
        ring.blind_index(phone.e164, kind="phone") if phone else None,
        phone.sms if phone else None,
        ring.current_id,
    ), []


@dataclass
class Chunk:
    """What checking a run of lines gave: rows seen, rows to stage, rejected lines with their reasons."""

    rows: int
    staged: int
    # (line, *values) tuples, or the same rows as the body of a COPY in text format.
    values: list[tuple[Any, ...]] | str
    rejected: list[tuple[int, Errors]]


def check_lines(checks: MemberChecks | ExposureChecks, header: list[str], lines: list[tuple[int, bytes | None]],
                *, copy_text: bool, max_line: int = MAX_LINE_BYTES) -> Chunk:
    """Parse and check a run of physical lines."""
    rows = 0
    staged: list[tuple[Any, ...]] = []
    rejected: list[tuple[int, Errors]] = []
    escape: set[int] = set()  # staged rows whose line holds a backslash, which COPY text must escape
    for line_no, data in lines:
        parsed = parse_line(data, header, max_line=max_line)
        if parsed is None:
            continue
        rows += 1
        row, problem = parsed
        if row is None:
            rejected.append((line_no, [("", problem or "unreadable row")]))
            continue
        values, errors = checks.check(row)
        if errors:
            rejected.append((line_no, errors))
        elif values and data is not None and b"\\" in data:
            escape.update(range(len(staged), len(staged) + len(values)))
        staged.extend((line_no, *v) for v in values)
    return Chunk(rows, len(staged), _copy_text(staged, escape) if copy_text else staged, rejected)


def _copy_text(rows: list[tuple[Any, ...]], escape: set[int]) -> str:
    """Rows as the body of a COPY ... FROM STDIN in text format.

    A staged row holds no tab, CR or LF (cell_errors refuses control characters; sealed values, indexes,
    ids and key ids never hold one), so only a row whose line held a backslash needs escaping.
    """
    out = []
    for i, row in enumerate(rows):
        parts = ["\\N" if v is None else ("t" if v else "f") if v is True or v is False else str(v) for v in row]
        if i in escape:
            parts = [p if v is None else _copy_escape(p) for p, v in zip(parts, row, strict=True)]
        out.append("\t".join(parts))
    out.append("")
    return "\n".join(out)


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
