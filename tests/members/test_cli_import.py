"""`portal import-members` as an operator runs it."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from app.cli import app
from tests.factories import MEMBER_HEADER, member_row

runner = CliRunner()


def write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "members.csv"
    path.write_text("\n".join([MEMBER_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_import_writes_summary_and_rejected_rows_report(fresh_database: str, tmp_path: Path) -> None:
    path = write(tmp_path, member_row("P1"), member_row("P2", branch="nowhere"), member_row("P3", first="=1+1"))
    result = runner.invoke(app, ["import-members", str(path)])
    assert result.exit_code == 0, result.output
    assert "inserted" in result.output and "2 rows rejected" in result.output
    with (tmp_path / "members.csv.rejected.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "column", "reason"]
    assert ["3", "branch_code", "unknown branch 'nowhere'"] in rows
    assert any(r[0] == "4" and r[1] == "first_name" for r in rows)
    again = runner.invoke(app, ["import-members", str(path)])
    assert "unchanged" in again.output


def test_strict_import_exits_non_zero_and_writes_nothing(fresh_database: str, tmp_path: Path) -> None:
    from app.db import default_session_factory
    from app.members import service as member_service

    path = write(tmp_path, member_row("Q1"), member_row("Q2", email="", phone=""))
    result = runner.invoke(app, ["import-members", "--strict", str(path)])
    assert result.exit_code == 1
    assert "nothing was written" in result.output
    with default_session_factory()() as session:
        assert member_service.count_members(session) == 0


def test_a_file_without_the_right_header_is_refused_clearly(fresh_database: str, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("number,name\n1,Ann\n")
    result = runner.invoke(app, ["import-members", str(path)])
    assert result.exit_code == 2
    assert "missing columns" in result.output
