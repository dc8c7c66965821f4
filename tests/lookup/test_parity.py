"""Nothing before the right code tells a visitor whether we hold an identifier: status, headers and body."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.lookup.helpers import csrf, member, run_jobs

IGNORED = {"x-request-id", "date"}


def comparable(response) -> tuple[int, dict[str, str], str]:  # type: ignore[no-untyped-def]
    """Status, headers and body with the per-visitor random values (CSRF token, cookie values) taken out."""
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        if name in IGNORED:
            continue
        shown = re.sub(r"^([^=]+)=[^;]*", r"\1=*", value) if name == "set-cookie" else value
        headers[name] = headers.get(name, "") + "|" + shown
    body = re.sub(r'name="csrf_token" value="[0-9a-f]+"', 'name="csrf_token" value="*"', response.text)
    return response.status_code, headers, body


def journey(app, identifier: str, jobs) -> list[tuple[int, dict[str, str], str]]:  # type: ignore[no-untyped-def]
    """What a visitor sees asking for a code, on the code page, after a wrong code and asking again."""
    with TestClient(app, follow_redirects=False) as web:
        asked = web.post("/check", data={"identifier": identifier, "csrf_token": csrf(web, "/check")})
        jobs()  # the worker has looked the identifier up (and sent a member their code)
        code_page = web.get("/check/code")
        wrong = web.post("/check/code", data={"code": "000000", "csrf_token": csrf(web, "/check/code")})
        resend = web.post("/check/code/resend", data={"csrf_token": csrf(web, "/check/code")})
        return [comparable(r) for r in (asked, code_page, wrong, resend)]


@pytest.mark.parametrize(("held", "not_held"), [("P300001", "P399999"),
                                                ("p1@kent.example.org", "nobody@kent.example.org")])
def test_members_and_strangers_get_the_same_answers(app, session: Session, session_factory: sessionmaker[Session],
                                                    held: str, not_held: str) -> None:  # type: ignore[no-untyped-def]
    member(session, "P300001", email="p1@kent.example.org")
    ours = journey(app, held, lambda: run_jobs(session_factory))
    theirs = journey(app, not_held, lambda: run_jobs(session_factory))
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == b, f"step {step} differs"
    assert ours[0][0] == 303 and ours[2][0] == 422
