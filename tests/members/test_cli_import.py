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


def report_of(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.csv")


def test_a_clean_run_leaves_no_report_from_an_earlier_run(fresh_database: str, tmp_path: Path) -> None:
    path = write(tmp_path, member_row("S1"), member_row("S2", branch="nowhere"))
    assert runner.invoke(app, ["import-members", str(path)]).exit_code == 0
    assert report_of(path).exists()
    path = write(tmp_path, member_row("S1"), member_row("S2"))
    result = runner.invoke(app, ["import-members", str(path)])
    assert result.exit_code == 0 and "rejected;" not in result.output
    assert not report_of(path).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["members.csv"], "no temporary file left behind either"


def test_a_symlink_at_the_report_path_is_replaced_never_written_through(fresh_database: str, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("precious\n")
    path = write(tmp_path, member_row("Y1"), member_row("Y2", branch="nowhere"))
    report_of(path).symlink_to(victim)
    assert runner.invoke(app, ["import-members", str(path)]).exit_code == 0
    assert victim.read_text() == "precious\n"
    assert not report_of(path).is_symlink() and "unknown branch" in report_of(path).read_text()

    report_of(path).unlink()
    report_of(path).symlink_to(victim)
    path = write(tmp_path, member_row("Y1"))
    assert runner.invoke(app, ["import-members", str(path)]).exit_code == 0
    assert victim.read_text() == "precious\n" and not report_of(path).is_symlink()


def test_an_import_whose_every_row_is_rejected_fails_and_writes_nothing(fresh_database: str, tmp_path: Path) -> None:
    from app.db import default_session_factory
    from app.members import service as member_service

    path = write(tmp_path, member_row("X1", branch="nowhere"), member_row("X2", phone="12345", email=""))
    result = runner.invoke(app, ["import-members", str(path)])
    assert result.exit_code == 1
    assert "every row was rejected: nothing was imported" in result.output
    assert "invalid phone number" in report_of(path).read_text()
    with default_session_factory()() as session:
        assert member_service.count_members(session) == 0


def test_a_report_that_cannot_be_written_stops_the_import_before_it_commits(fresh_database: str,
                                                                             tmp_path: Path) -> None:
    """A full disk while writing the report: the import rolls back and says so, instead of committing and
    then failing. (A file-size limit stands in for the full disk.)"""
    import os
    import resource
    import subprocess
    import sys

    from sqlalchemy.engine import make_url

    from app.db import default_session_factory
    from app.members import service as member_service

    database = Path(make_url(fresh_database).database or "")
    limit = 2 * max(database.stat().st_size if database.is_file() else 0, 1 << 20) + (1 << 20)
    bidi = "\u202e"
    bad = [member_row(f"B{i}", first=f"A{bidi}nn", last=f"J{bidi}ones", rank=f"C{bidi}onstable")
           for i in range(limit // 250)]
    path = write(tmp_path, *[member_row(f"G{i}") for i in range(100)], *bad)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PORTAL_DATABASE_URL": fresh_database}
    result = subprocess.run([sys.executable, "-m", "app.cli", "import-members", str(path)], env=env,
                            capture_output=True, text=True, timeout=120, preexec_fn=small_files, check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "import failed, nothing was imported" in result.stderr
    assert "Traceback" not in result.stderr
    assert not report_of(path).exists()
    with default_session_factory()() as session:
        assert member_service.count_members(session) == 0


def test_a_report_path_that_cannot_be_created_is_refused_before_importing(fresh_database: str,
                                                                          tmp_path: Path) -> None:
    path = write(tmp_path, member_row("U1"))
    result = runner.invoke(app, ["import-members", str(path), "--report", str(tmp_path / "no" / "such" / "r.csv")])
    assert result.exit_code == 2 and "cannot write the rejected-rows report" in result.output
    result = runner.invoke(app, ["import-members", str(path), "--report", str(path)])
    assert result.exit_code == 2 and "cannot replace the file being imported" in result.output
    assert "U1" in path.read_text()


def test_cr_only_files_import_and_a_huge_header_cell_is_a_message(fresh_database: str, tmp_path: Path) -> None:
    mac = tmp_path / "mac.csv"
    mac.write_bytes("\r".join([MEMBER_HEADER, member_row("C1"), member_row("C2")]).encode() + b"\r")
    result = runner.invoke(app, ["import-members", str(mac)])
    assert result.exit_code == 0, result.output
    assert "inserted" in result.output and "rejected" not in result.output.replace("rejected rows", "")

    huge = tmp_path / "huge.csv"
    huge.write_bytes((MEMBER_HEADER + ",notes" + "x" * (129 * 1024) + "\n" + member_row("C3") + ",\n").encode())
    result = runner.invoke(app, ["import-members", str(huge)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "the header row is longer than" in result.output


def test_the_summary_counts_phones_that_cannot_take_sms(fresh_database: str, tmp_path: Path) -> None:
    path = write(tmp_path, member_row("T1"), member_row("T2", phone="020 7946 0000"),
                 member_row("T3", phone="0300 123 4567"))
    result = runner.invoke(app, ["import-members", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 phone numbers cannot take SMS" in result.output
