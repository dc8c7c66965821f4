"""The `portal` command as a whole: its verbs, the lists of reference data, and logins that copy whole."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def test_every_verb_of_the_stable_interface_is_still_there() -> None:
    listed = runner.invoke(app, ["--help"], terminal_width=200).output
    for verb in ("serve", "worker", "migrate", "demo", "import-members", "import-exposures", "create-staff",
                 "outbox", "audit", "campaign", "stop-all", "resume-all", "incident", "branch"):
        assert f" {verb} " in listed, verb
    campaign = runner.invoke(app, ["campaign", "--help"], terminal_width=200).output
    for verb in ("create", "approve", "send", "pause", "resume", "cancel", "status", "export", "unreached", "list",
                 "preview"):
        assert f" {verb} " in campaign, verb


def test_demo_logins_print_as_plain_lines_that_copy_whole_in_a_narrow_terminal(fresh_database: str) -> None:
    result = runner.invoke(app, ["demo", "--members", "5"], env={"COLUMNS": "40"}, terminal_width=40)
    assert result.exit_code == 0, result.output
    uris = [line.split("TOTP enrolment URI: ", 1)[1] for line in result.output.splitlines()
            if "TOTP enrolment URI: " in line]
    assert len(uris) >= 5
    for uri in uris:
        assert pyotp.parse_uri(uri).secret, uri  # the whole URI is on its one line
    assert "│" not in result.output and "┃" not in result.output, "no table borders around the logins"


def test_branch_list_and_incident_list_show_the_codes_other_verbs_take(fresh_database: str) -> None:
    branches = runner.invoke(app, ["branch", "list"], terminal_width=200)
    assert branches.exit_code == 0 and "metropolitan" in branches.output and "gwent" in branches.output
    assert runner.invoke(app, ["demo", "--members", "5"]).exit_code == 0
    incidents = runner.invoke(app, ["incident", "list"], terminal_width=200)
    assert incidents.exit_code == 0 and "hq-2019" in incidents.output


def test_demo_names_a_member_of_each_kind_to_check_as_and_where_their_codes_arrive(fresh_database: str) -> None:
    result = runner.invoke(app, ["demo", "--members", "1000"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Members to check as at http://127.0.0.1:8000/check" in text
    for kind in ("affected, code by email: 1", "affected, code by SMS only (no email on file): 1",
                 "not affected (joined after the attack): 101"):
        assert kind in text, kind
    reads = [line.split("read their code: ", 1)[1] for line in text.splitlines() if "read their code: " in line]
    assert len(reads) == 3 and all("portal outbox --to " in r for r in reads)
    assert any("'07700 9" in r for r in reads), "the SMS-only member's number, quoted for the shell"
    assert "staff reset-second-factor EMAIL --by ADMIN_EMAIL" in text, "the way back from lost logins"
    again = runner.invoke(app, ["demo", "--members", "1000"], terminal_width=200).output
    assert "Staff logins" not in again and reads[2] in again, "logins once; the members to try every time"


def test_a_small_demo_says_every_member_is_affected(fresh_database: str) -> None:
    text = runner.invoke(app, ["demo", "--members", "5"], terminal_width=200).output
    assert "not affected" not in text and "every member of a demo of 5 is affected" in text


def test_serve_on_another_port_links_to_that_port_in_development(fresh_database: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PORTAL_PUBLIC_BASE_URL"}
    env.update(PORTAL_ENV="development", PORTAL_DEMO_ON_FIRST_START="false")
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        feed = None
        for _ in range(600):
            assert proc.poll() is None, log.read_text()
            try:
                feed = httpx.get(f"http://127.0.0.1:{port}/updates.atom", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert feed is not None and feed.status_code == 200, log.read_text()
        assert f"http://127.0.0.1:{port}/updates.atom" in feed.text and ":8000" not in feed.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
