"""Bulk imports of members and exposures from CSV.

A file is streamed row by row into a staging table in chunks, and each rejected row goes straight
to the caller's sink (the report file), so memory stays flat whatever the file's size and however
many of its rows are refused. Rows are then checked against each other and the database in SQL and
merged in the same transaction. The caller's transaction is therefore all-or-nothing: a failure
leaves the database as it was.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby, islice
from typing import IO, Any

from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.branches import service as branch_service
from app.config import get_settings
from app.incidents import service as incident_service
from app.kit.csvsafe import CsvFileError, read_header
from app.members import pii
from app.members.repository import EXPOSURE_STAGE, MEMBER_STAGE, MemberRepository
from app.members.rows import EXPOSURE_COLUMNS, MAX_LEN, MEMBER_COLUMNS, Chunk, ExposureChecks, MemberChecks, check_lines

LINES_PER_CHUNK = 2000
# Below this many rows a pool of processes costs more to start than it saves.
POOL_AFTER_ROWS = 20_000
KEEP_REJECTIONS = 1000

__all__ = ["EXPOSURE_COLUMNS", "MAX_LEN", "MEMBER_COLUMNS", "CsvFileError", "ImportSummary", "Rejection",
           "import_exposures", "import_members"]


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


def _member_checks(session: Session) -> MemberChecks:
    branches = {code.lower(): (b.id, b.default_language)
                for code, b in branch_service.branches_by_code(session).items()}
    return MemberChecks(branches, pii.keyring(), get_settings().accept_drama_numbers)


# What a pool's processes check with, set in each as it starts (inherited through fork, never pickled).
_pool_state: dict[str, Any] = {}


def _start_pool_process(checks: MemberChecks | ExposureChecks, header: list[str], copy_text: bool) -> None:
    _pool_state.update(checks=checks, header=header, copy_text=copy_text)


def _check_in_pool(lines: list[tuple[int, bytes | None]]) -> Chunk:
    return check_lines(_pool_state["checks"], _pool_state["header"], lines, copy_text=_pool_state["copy_text"])


def _checked_chunks(
    source: IO[bytes], checks: MemberChecks | ExposureChecks, *, copy_text: bool, processes: int, pool_after: int,
) -> Iterator[Chunk]:
    """Checked chunks of the file in order: in this process at first, then, for a big file, in a pool of
    processes, with a few chunks in flight at most so that memory stays flat."""
    header, lines = read_header(source, required=list(checks.columns))
    seen = 0
    while seen < pool_after or processes < 2:
        batch = list(islice(lines, LINES_PER_CHUNK))
        if not batch:
            return
        seen += len(batch)
        yield check_lines(checks, header, batch, copy_text=copy_text)
    # fork: the processes inherit the checks (keys included) without pickling; they never touch the database.
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_start_pool_process, initargs=(checks, header, copy_text)) as pool:
        pending: deque[Any] = deque()
        while True:
            while len(pending) < 2 * processes:
                batch = list(islice(lines, LINES_PER_CHUNK))
                if not batch:
                    break
                pending.append(pool.apply_async(_check_in_pool, (batch,)))
            if not pending:
                return
            yield pending.popleft().get()


def _stage_file(
    repo: MemberRepository,
    table: Any,
    *,
    source: IO[bytes],
    checks: MemberChecks | ExposureChecks,
    summary: ImportSummary,
    rejects: _Rejections,
    on_progress: Progress | None,
    processes: int | None,
    pool_after: int,
) -> None:
    """Stream the file, checked chunk by chunk, into the staging table; rejections go out as they come."""
    repo.create_stage(table)
    copy_text = repo.dialect == "postgresql"
    if processes is None:
        processes = get_settings().IMPORT_PROCESSES or os.cpu_count() or 1
    if multiprocessing.current_process().daemon:
        processes = 1  # a daemonic process may not start processes of its own
    for chunk in _checked_chunks(source, checks, copy_text=copy_text, processes=processes, pool_after=pool_after):
        summary.rows += chunk.rows
        for line, errors in chunk.rejected:
            rejects.row(line, errors)
        if chunk.staged:
            repo.stage_chunk(table, chunk.values)
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
    processes: int | None = None,
    pool_after: int = POOL_AFTER_ROWS,
) -> ImportSummary:
    """Upsert members from a CSV by membership number; importing the same file twice changes nothing.

    Raises CsvFileError when the file as a whole is unusable. With `strict`, any rejected row means
    nothing is written; when every row is rejected, nothing is written either. Past `pool_after` lines,
    rows are checked and sealed by `processes` processes (default: PORTAL_IMPORT_PROCESSES, else one
    per CPU); this process alone writes, in the caller's transaction.
    """
    summary = ImportSummary(phones_without_sms=0)
    rejects = _Rejections(summary, on_reject)
    repo = MemberRepository(session)
    _stage_file(repo, MEMBER_STAGE, source=source, checks=_member_checks(session), summary=summary,
                rejects=rejects, on_progress=on_progress, processes=processes, pool_after=pool_after)
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


def import_exposures(
    session: Session,
    *,
    source: IO[bytes],
    actor: str,
    strict: bool = False,
    on_reject: RejectSink | None = None,
    on_progress: Progress | None = None,
    processes: int | None = None,
    pool_after: int = POOL_AFTER_ROWS,
) -> ImportSummary:
    """Set, per member and incident in the file, exactly the categories the file lists."""
    summary = ImportSummary()
    rejects = _Rejections(summary, on_reject)
    repo = MemberRepository(session)
    checks = ExposureChecks({code: i.id for code, i in incident_service.incidents_by_code(session).items()},
                            {code: c.id for code, c in incident_service.categories_by_code(session).items()})
    _stage_file(repo, EXPOSURE_STAGE, source=source, checks=checks, summary=summary, rejects=rejects,
                on_progress=on_progress, processes=processes, pool_after=pool_after)

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
