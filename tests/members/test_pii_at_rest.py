"""Contacts never reach the database in plain text."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.cli import app
from tests.conftest import BACKEND
from tests.factories import MEMBER_HEADER, member_row


def test_a_database_dump_contains_no_imported_contact(fresh_database: str, tmp_path: Path) -> None:
    rows = [member_row(f"Z{i}", email=f"zed.person{i}@met.example.org", phone=f"07700 900{i:03d}")
            for i in range(50)]
    path = tmp_path / "m.csv"
    path.write_text("\n".join([MEMBER_HEADER, *rows]) + "\n")
    assert CliRunner().invoke(app, ["import-members", str(path)]).exit_code == 0

    if BACKEND == "postgresql":
        url = make_url(fresh_database)
        assert shutil.which("pg_dump"), "pg_dump is needed for this test (postgresql-client)"
        dump = subprocess.run(["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                               "-U", url.username or "postgres", "--data-only", url.database or ""],
                              capture_output=True, check=True).stdout
    else:
        dump = Path(make_url(fresh_database).database or "").read_bytes()
        dump += b"".join(p.read_bytes() for p in Path(make_url(fresh_database).database or "").parent.glob("*-wal"))
    assert b"Z1" in dump and b"Jones" in dump, "the dump must contain the members themselves"
    for i in range(50):
        assert f"zed.person{i}@met.example.org".encode() not in dump
        for form in (f"+447700900{i:03d}", f"07700 900{i:03d}", f"7700900{i:03d}"):
            assert form.encode() not in dump


@pytest.mark.parametrize("value", ["ann@example.org", "+447700900123"])
def test_blind_indexes_depend_on_the_key(value: str) -> None:
    from app.kit.crypto import Keyring

    a = Keyring.parse("k1:" + "A" * 43 + "=")
    b = Keyring.parse("k1:" + "B" * 43 + "=")
    assert a.blind_index(value, kind="email") != b.blind_index(value, kind="email")
    assert a.blind_index(value, kind="email") == a.blind_index(value, kind="email")
