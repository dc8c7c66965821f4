"""Nothing before the right code tells a visitor whether we hold an identifier: status, headers and body.

Besides one journey each, sequences of checks, second checks from another browser, resends, wrong codes,
the right code, time passing (cool-down, expiry, the hour of sends) and the worker running are generated,
and a member's identifier must get exactly the answers a stranger's gets until the member signs in.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings
from app.providers import outbox
from tests.lookup.helpers import csrf, drain, member, run_jobs, time_passes

IGNORED = {"x-request-id", "date"}
Answer = tuple[int, dict[str, str], str]


def comparable(response) -> Answer:  # type: ignore[no-untyped-def]
    """Status, headers and body with the per-visitor random values (CSRF token, cookie values) taken out."""
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        if name in IGNORED:
            continue
        shown = re.sub(r"^([^=]+)=[^;]*", r"\1=*", value) if name == "set-cookie" else value
        headers[name] = headers.get(name, "") + "|" + shown
    body = re.sub(r'name="csrf_token" value="[0-9a-f]+"', 'name="csrf_token" value="*"', response.text)
    return response.status_code, headers, body


def journey(app, identifier: str, jobs) -> list[Answer]:  # type: ignore[no-untyped-def]
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


# --- generated sequences -----------------------------------------------------------------------------
BROWSERS = 2  # the owner's and someone else's, each with its own cookies and address
ACTIONS = st.one_of(
    st.tuples(st.sampled_from(["check", "resend", "wrong", "right", "page"]), st.integers(0, BROWSERS - 1)),
    st.tuples(st.just("jobs"), st.just(0)),
    # seconds: within the cool-down, past it, past a code's life, past the hour of sends
    st.tuples(st.just("wait"), st.sampled_from([30, 70, 11 * 60, 61 * 60])),
)
_examples = itertools.count(1)


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two codes an hour and three tries, so that short sequences reach every limit."""
    monkeypatch.setenv("PORTAL_CHECK_MAX_SENDS", "2")
    monkeypatch.setenv("PORTAL_CHECK_CODE_TRIES", "3")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def play(app: FastAPI, session: Session, session_factory: sessionmaker[Session], identifier: str,
         actions: list[tuple[str, int]], *, network: int, codes: list[str] | None = None,
         email: str | None = None) -> tuple[list[Answer], list[str], int | None]:
    """Play the actions for one identifier: the answers, the codes typed, and the step a sign-in happened.

    A member's run types codes derived from what the outbox holds for them (the newest, or one off it);
    a stranger's run types the same strings in the same places.
    """
    drain()
    typed: list[str] = []
    replay = iter(codes or [])
    answers: list[Answer] = []
    browsers = [TestClient(app, follow_redirects=False, client=(f"10.{network}.{n}.1", 1234))
                for n in range(BROWSERS)]
    try:
        for action, n in actions:
            web = browsers[n % BROWSERS]
            if action == "jobs":
                run_jobs(session_factory)
                continue
            if action == "wait":
                time_passes(session, n, identifier=identifier)
                continue
            if action == "check":
                answer = web.post("/check", data={"identifier": identifier, "csrf_token": csrf(web, "/check")})
            elif action == "resend":
                answer = web.post("/check/code/resend", data={"csrf_token": csrf(web, "/check")})
            elif action == "page":
                answer = web.get("/check/code")
            else:
                if codes is not None:
                    code = next(replay)
                else:
                    sent = outbox.latest(session, to=email, last=1) if email else []
                    newest = re.search(r"\b(\d{6})\b", sent[0].body).group(1) if sent else "000000"  # type: ignore[union-attr]
                    code = newest if action == "right" else f"{(int(newest) + 1) % 10**6:06d}"
                    typed.append(code)
                answer = web.post("/check/code", data={"code": code, "csrf_token": csrf(web, "/check")})
            answers.append(comparable(answer))
            if answer.status_code == 303 and answer.headers["location"] == "/status":
                return answers, typed, len(answers) - 1
        return answers, typed, None
    finally:
        for web in browsers:
            web.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(actions=st.lists(ACTIONS, min_size=1, max_size=14), by_email=st.booleans())
def test_any_sequence_of_checks_answers_a_member_and_a_stranger_alike(
        tight: None, app: FastAPI, session: Session, session_factory: sessionmaker[Session],
        actions: list[tuple[str, int]], by_email: bool) -> None:
    n = next(_examples)
    number, email = f"PM{n:05d}", f"pm{n:05d}@kent.example.org"
    member(session, number, email=email)
    held, not_held = (email, f"ps{n:05d}@kent.example.org") if by_email else (number, f"PS{n:05d}")
    ours, typed, signed_in = play(app, session, session_factory, held, actions, network=(2 * n) % 250,
                                  email=email)
    played = actions if signed_in is None else actions[:_action_index(actions, signed_in) + 1]
    theirs, _, stranger_in = play(app, session, session_factory, not_held, played, network=(2 * n + 1) % 250,
                                  codes=typed)
    assert stranger_in is None, "a stranger's identifier never signs anyone in"
    assert len(ours) == len(theirs)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if step == signed_in:
            assert b[0] == 422, "the code that let the member in is only a wrong code for a stranger"
            continue
        assert a == b, f"answer {step} differs for {played}"


def _action_index(actions: list[tuple[str, int]], answer_index: int) -> int:
    """The index of the action that gave the nth answer (the worker and waiting give none)."""
    answered = -1
    for index, (action, _n) in enumerate(actions):
        if action not in ("jobs", "wait"):
            answered += 1
            if answered == answer_index:
                return index
    raise AssertionError("no such answer")


