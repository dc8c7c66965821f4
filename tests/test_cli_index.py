"""The `portal` command as a whole: its verbs, the lists of reference data, and logins that copy whole."""

from __future__ import annotations

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
