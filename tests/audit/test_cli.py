"""`portal audit show`: the trail an auditor asks for, newest first, filtered."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def portal(*argv: str, code: int = 0) -> str:
    result = runner.invoke(app, list(argv))
    assert result.exit_code == code, result.output
    return result.output


def events(output: str) -> list[tuple[int, str, str, str]]:
    """(id, who, action, subject) of each line `audit show` printed."""
    found = []
    for line in output.splitlines():
        m = re.match(r"#(\d+) \S+ \S+ (\S+) (\S+) (\S+)", line)
        if m:
            found.append((int(m[1]), m[2], m[3], m[4]))
    return found


def test_audit_show_filters_by_who_action_subject_and_time_newest_first(fresh_database: str) -> None:
    portal("demo", "--members", "10")
    every = events(portal("audit", "show", "--last", "500"))
    assert len(every) > 6 and [e[0] for e in every] == sorted((e[0] for e in every), reverse=True)

    created = events(portal("audit", "show", "--action", "staff.create"))
    assert created and {e[2] for e in created} == {"staff.create"} and {e[1] for e in created} == {"demo"}
    assert {e[2] for e in events(portal("audit", "show", "--action", "staff.*"))} >= {"staff.create"}
    assert events(portal("audit", "show", "--who", "nobody@example.org")) == []
    one = created[-1]
    assert [e[0] for e in events(portal("audit", "show", "--subject", one[3]))] == [
        e[0] for e in every if e[3] == one[3]]
    assert len(events(portal("audit", "show", "--since", "1h"))) == len(every)
    assert "no audit events match" in portal("audit", "show", "--since", "2999-01-01")
    assert len(events(portal("audit", "show", "--last", "2"))) == 2
    assert "--since takes" in portal("audit", "show", "--since", "yesterday", code=2)
