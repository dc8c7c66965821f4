"""Imports hold against hostile and odd files: any line ending, bounded lines, clear refusals, no look-alikes."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.kit.csvsafe import MAX_LINE_BYTES
from app.members import imports
from app.members.models import Member
from tests.factories import MEMBER_HEADER, import_members, member_csv, member_row


def numbers(session: Session) -> list[str]:
    return list(session.execute(select(Member.membership_number).order_by(Member.membership_number)).scalars())


def reasons(summary: imports.ImportSummary) -> dict[tuple[int, str], str]:
    return {(r.line, r.column): r.reason for r in summary.rejections}


# --- line endings and line length (issue items 11 and 12) -------------------------------------------
@pytest.mark.parametrize("newline", ["\r", "\n", "\r\n"], ids=["CR (CSV Macintosh)", "LF", "CRLF"])
def test_every_line_ending_imports_alike(session: Session, newline: str) -> None:
    source = member_csv(member_row("N1"), member_row("N2", branch="nowhere"), member_row("N3"), newline=newline)
    summary = imports.import_members(session, source=source, actor="test")
    assert (summary.rows, summary.inserted) == (3, 2)
    assert reasons(summary)[(3, "branch_code")] == "unknown branch 'nowhere'", "line numbers count any ending"
    assert numbers(session) == ["N1", "N3"]
    assert {m.rank for m in session.execute(select(Member)).scalars()} == {"Constable"}, "no ending left in a cell"


def test_mixed_endings_and_a_crlf_split_across_reads(session: Session) -> None:
    data = (MEMBER_HEADER + "\r\n" + member_row("M1") + "\r" + member_row("M2") + "\n" + member_row("M3") + "\r\n")
    raw = data.encode()
    cut = raw.index(b"\r\n", len(MEMBER_HEADER) + 5) + 1  # between the CR and the LF of a CRLF

    class Pieces:
        def __init__(self) -> None:
            self.pieces = [raw[:cut], raw[cut:]]

        def read(self, size: int = -1) -> bytes:
            return self.pieces.pop(0) if self.pieces else b""

    summary = imports.import_members(session, source=Pieces(), actor="test")  # type: ignore[arg-type]
    assert (summary.rows, summary.inserted, summary.rejected_rows) == (3, 3, 0)


def test_an_overlong_line_is_rejected_and_the_rest_still_imports(session: Session) -> None:
    long_row = member_row("L2", first="x" * (MAX_LINE_BYTES + 10))
    summary = import_members(session, member_row("L1"), long_row, member_row("L3"))
    assert reasons(summary)[(3, "")] == f"line longer than {MAX_LINE_BYTES:,} bytes"
    assert numbers(session) == ["L1", "L3"]


def test_a_file_without_any_line_ending_is_read_in_bounded_lines(session: Session) -> None:
    """A multi-megabyte file of one "line" is refused as such, without holding it whole."""
    data = (MEMBER_HEADER + "\n" + member_row("W1") + "," * (3 * 1024 * 1024)).encode()
    summary = imports.import_members(session, source=io.BytesIO(data), actor="test")
    assert reasons(summary) == {(2, ""): f"line longer than {MAX_LINE_BYTES:,} bytes"}
    assert not summary.written


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (MEMBER_HEADER + ",notes" + "x" * (129 * 1024), "the header row is longer than"),
        (MEMBER_HEADER + ',"unclosed', "the header row is not valid CSV"),
        (MEMBER_HEADER.replace("rank", "ra\x00nk"), "control or invisible character"),
        (MEMBER_HEADER.replace("rank", "ra\u202enk"), "control or invisible character"),
        (MEMBER_HEADER + ",email", "column 'email' appears more than once"),
        (MEMBER_HEADER + ", EMAIL ", "column 'email' appears more than once"),
    ],
    ids=["cell over 128 KiB", "open quote", "NUL", "bidi override", "repeated column", "repeated, other case"],
)
def test_a_malformed_header_is_refused_with_a_message(session: Session, header: str, message: str) -> None:
    with pytest.raises(imports.CsvFileError, match=message):
        imports.import_members(session, source=member_csv(member_row("H1"), header=header), actor="test")
    assert numbers(session) == []


# --- rejected rows stream, they are not collected (item 11) ------------------------------------------
def test_rejections_reach_the_sink_while_the_file_is_still_being_read(session: Session) -> None:
    bad = [member_row(f"R{i}", branch="nowhere") for i in range(10 * imports.KEEP_REJECTIONS)]
    blocks = [member_csv(*bad[:2500]).getvalue(), *(("\n".join(bad[i:i + 2500]) + "\n").encode()
                                                    for i in range(2500, len(bad), 2500))]
    sink: list[imports.Rejection] = []
    seen_at_read: list[int] = []

    class Blocks:
        def read(self, size: int = -1) -> bytes:
            seen_at_read.append(len(sink))
            return blocks.pop(0) if blocks else b""

    summary = imports.import_members(session, source=Blocks(), actor="test", on_reject=sink.append)  # type: ignore[arg-type]
    assert len(seen_at_read) == 5
    assert 0 < seen_at_read[1] < seen_at_read[2] < seen_at_read[3] < len(bad), (
        "each block's rejections are passed on before the next block is read", seen_at_read)
    assert len(sink) == summary.rejected_rows == len(bad)
    assert len(summary.rejections) == imports.KEEP_REJECTIONS, "only the first few stay in memory"
    assert not summary.written


def test_a_membership_number_repeated_many_times_names_a_few_other_lines(session: Session) -> None:
    summary = import_members(session, *[member_row("DUP") for _ in range(50)], member_row("ONCE"))
    r = reasons(summary)
    assert r[(2, "membership_number")] == ("membership number repeated in this file (also line 3, 4, 5 and"
                                           " 46 more)")
    assert r[(51, "membership_number")] == ("membership number repeated in this file (also line 2, 3, 4 and"
                                            " 46 more)")
    assert summary.rejected_rows == 50 and numbers(session) == ["ONCE"]


# --- invisible and look-alike characters (item 13) ---------------------------------------------------
INVISIBLE = {
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE", "\u202a": "U+202A LEFT-TO-RIGHT EMBEDDING",
    "\u2066": "U+2066 LEFT-TO-RIGHT ISOLATE", "\u2069": "U+2069 POP DIRECTIONAL ISOLATE",
    "\u200b": "U+200B ZERO WIDTH SPACE", "\u200d": "U+200D ZERO WIDTH JOINER", "\ufeff": "U+FEFF",
    "\u0085": "U+0085", "\u009b": "U+009B", "\x7f": "U+007F", "\x1b": "U+001B",
    "\u2028": "U+2028 LINE SEPARATOR", "\u2029": "U+2029 PARAGRAPH SEPARATOR", "\ue000": "U+E000",
    "\U000e0001": "U+E0001 LANGUAGE TAG", "\u0378": "U+0378",
}


@pytest.mark.parametrize("char", list(INVISIBLE), ids=list(INVISIBLE.values()))
@pytest.mark.parametrize("column", ["first_name", "last_name", "rank", "membership_number"])
def test_control_bidi_and_invisible_characters_are_refused(session: Session, char: str, column: str) -> None:
    fields = {"first": "Ann", "last": "Jones", "rank": "Constable", "number": "V1"}
    key = {"first_name": "first", "last_name": "last", "rank": "rank", "membership_number": "number"}[column]
    fields[key] = fields[key][:1] + char + fields[key][1:]
    number = fields.pop("number")
    summary = import_members(session, member_row("OK1"), member_row(number, **fields))
    reason = reasons(summary)[(3, column)]
    assert reason.startswith("contains an invisible or control character (")
    assert INVISIBLE[char] in reason
    assert numbers(session) == ["OK1"]


@pytest.mark.parametrize("number", ["１２３４５", "Р12345", "A1\u00a02", "12.345", "12 345", "/123"],
                         ids=["full-width digits", "Cyrillic Er", "no-break space", "dot", "space", "leading slash"])
def test_membership_numbers_keep_to_ascii_letters_digits_dash_and_slash(session: Session, number: str) -> None:
    summary = import_members(session, member_row(number))
    assert "membership_number" in {c for _, c in reasons(summary)}
    assert numbers(session) == []


def test_real_names_and_membership_numbers_still_import(session: Session) -> None:
    summary = import_members(session, member_row("PSA-2019/0042", first="Siân", last="O'Brien-Ní Dhuibhir"),
                             member_row("123456", first="José María", last="Þórsdóttir", rank="Ditectif Gwnstabl"),
                             member_row("A7", first="محمد", last="Łukasz Żółć"))
    assert summary.rejected_rows == 0 and summary.inserted == 3
