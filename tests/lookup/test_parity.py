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
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings
from app.lookup import hashing
from app.lookup.models import VerificationChallenge
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
BROWSERS = 3  # the owner's and others', each with its own cookies and address
# "burn": wrong codes until that browser has used its tries (so that browsers are refused, and codes
# retired for everyone, within short sequences).
BROWSER_ACTIONS = st.tuples(st.sampled_from(["check", "check", "right", "right", "right", "wrong", "burn", "burn",
                                             "resend", "page"]),
                            st.sampled_from([0, 0, 1, 2]))  # the owner's browser more often than the others
ACTIONS = st.one_of(
    BROWSER_ACTIONS, BROWSER_ACTIONS, BROWSER_ACTIONS,  # weighted: most steps are a browser's
    st.tuples(st.just("jobs"), st.just(0)), st.tuples(st.just("jobs"), st.just(0)),
    # seconds: within the cool-down, past it, past a code's life, past the hour of sends
    st.tuples(st.just("wait"), st.sampled_from([30, 70, 11 * 60, 61 * 60])),
)
_examples = itertools.count(1)


@pytest.fixture
def tight(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two codes an hour, two tries per browser and three per code, so that short sequences reach every
    limit; and room enough per address that no answer is a 429 (its Retry-After depends on the clock)."""
    monkeypatch.setenv("PORTAL_CHECK_MAX_SENDS", "2")
    monkeypatch.setenv("PORTAL_CHECK_CODE_TRIES", "2")
    monkeypatch.setenv("PORTAL_CHECK_CODE_GLOBAL_TRIES", "3")
    monkeypatch.setenv("PORTAL_LIMIT_CHECK_CODE", "1000/minute")
    monkeypatch.setenv("PORTAL_LIMIT_CHECK_REQUEST", "1000/minute")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def play(app: FastAPI, session: Session, session_factory: sessionmaker[Session], identifier: str,
         actions: list[tuple[str, int]], *, network: int, codes: list[str] | None = None,
         email: str | None = None, signed_in: dict[int, int] | None = None
         ) -> tuple[dict[tuple[int, int], Answer], list[str]]:
    """Play the actions for one identifier: the answers to each (by its index and step) and the codes typed.

    A member's run types codes derived from what the outbox holds for them (the newest, or one off it),
    and records in `signed_in` (action index -> browser) where a code let them in; a stranger's run types
    the same strings in the same places. A browser that signed in does nothing more in either run.
    """
    drain()
    typed: list[str] = []
    replay = iter(codes or [])
    signed_in = {} if signed_in is None else signed_in
    answers: dict[tuple[int, int], Answer] = {}
    browsers = [TestClient(app, follow_redirects=False, client=(f"10.{network}.{n}.1", 1234))
                for n in range(BROWSERS)]
    try:
        for index, (action, n) in enumerate(actions):
            web = browsers[n % BROWSERS]
            if action == "jobs":
                run_jobs(session_factory)
                continue
            if action == "wait":
                time_passes(session, n, identifier=identifier)
                continue
            if any(at < index and browser == n for at, browser in signed_in.items()):
                continue
            if action == "check":
                answer = web.post("/check", data={"identifier": identifier, "csrf_token": csrf(web, "/check")})
            elif action == "resend":
                answer = web.post("/check/code/resend", data={"csrf_token": csrf(web, "/check")})
            elif action == "page":
                answer = web.get("/check/code")
            else:
                for step in range(get_settings().CHECK_CODE_TRIES if action == "burn" else 1):
                    if codes is not None:
                        code = next(replay)
                    else:
                        sent = outbox.latest(session, to=email, last=1) if email else []
                        newest = re.search(r"\b(\d{6})\b", sent[0].body).group(1) if sent else "000000"  # type: ignore[union-attr]
                        code = newest if action == "right" else f"{(int(newest) + 1) % 10**6:06d}"
                        typed.append(code)
                    answer = web.post("/check/code", data={"code": code, "csrf_token": csrf(web, "/check")})
                    if codes is None and answer.status_code == 303 and answer.headers["location"] == "/status":
                        signed_in[index] = n
                    answers[index, step] = comparable(answer)
                continue
            answers[index, 0] = comparable(answer)
        return answers, typed
    finally:
        for web in browsers:
            web.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(started=st.sampled_from([0, 1, 2]), actions=st.lists(ACTIONS, min_size=1, max_size=14),
       by_email=st.booleans())
def test_any_sequence_of_checks_answers_a_member_and_a_stranger_alike(
        tight: None, app: FastAPI, session: Session, session_factory: sessionmaker[Session], started: int,
        actions: list[tuple[str, int]], by_email: bool) -> None:
    # Most sequences begin with a check whose code (for a member) has gone out, some with a second
    # browser checking too (so that tries from several browsers meet on one code).
    actions = [*[("check", 0), ("jobs", 0), ("check", 1)][:[0, 2, 3][started]], *actions]
    refused, retired, signed_in = alike(app, session, session_factory, actions, by_email=by_email)
    event(f"the member signed in {len(signed_in)} times")
    event(f"{len({actions[at][1] for at in refused})} browsers were refused")
    event(f"{retired}: a code was retired for everyone")
    event(f"{bool(refused and signed_in)}: a browser was refused and the member signed in")


# The probe's sequences (issue 17 item 21): one browser burns its tries (and new codes up to the cap),
# several browsers spend a code's budget; the owner's browser types the newest code throughout.
PROBES = [
    [("check", 1), ("jobs", 0), ("burn", 1), ("right", 1), ("check", 0), ("jobs", 0), ("right", 0)],
    [("check", 1), ("jobs", 0), ("burn", 1), ("wait", 70), ("resend", 1), ("jobs", 0), ("burn", 1), ("wait", 70),
     ("resend", 1), ("jobs", 0), ("check", 0), ("jobs", 0), ("right", 0)],
    [("check", 0), ("jobs", 0), ("check", 1), ("check", 2), ("burn", 1), ("wrong", 2), ("right", 0), ("page", 0),
     ("wait", 70), ("check", 0), ("jobs", 0), ("right", 0)],
    [("check", 0), ("jobs", 0), ("check", 1), ("burn", 1), ("check", 1), ("wrong", 1), ("right", 0)],
]


@pytest.mark.parametrize("actions", PROBES)
def test_browsers_refused_and_codes_retired_answer_a_member_and_a_stranger_alike(
        tight: None, app: FastAPI, session: Session, session_factory: sessionmaker[Session],
        actions: list[tuple[str, int]]) -> None:
    refused, retired, signed_in = alike(app, session, session_factory, actions, by_email=False)
    assert refused and signed_in, "the sequence does reach a refusal and the owner's sign-in"


def alike(app: FastAPI, session: Session, session_factory: sessionmaker[Session], actions: list[tuple[str, int]],
          *, by_email: bool) -> tuple[set[int], bool, dict[int, int]]:
    """Play the actions for a member and for a stranger; every answer must be the same until the member
    signs in. Returns which actions were refused for too many tries, whether a code was retired for
    everyone, and where the member signed in."""
    n = next(_examples)
    number, email = f"PM{n:05d}", f"pm{n:05d}@kent.example.org"
    member(session, number, email=email)
    held, not_held = (email, f"ps{n:05d}@kent.example.org") if by_email else (number, f"PS{n:05d}")
    signed_in: dict[int, int] = {}
    ours, typed = play(app, session, session_factory, held, actions, network=(2 * n) % 250, email=email,
                       signed_in=signed_in)
    theirs, _ = play(app, session, session_factory, not_held, actions, network=(2 * n + 1) % 250, codes=typed,
                     signed_in=dict(signed_in))
    refused = {at for (at, _), a in ours.items() if a[0] == 422 and "wrong code too many times" in a[2]}
    retired = session.execute(select(VerificationChallenge.status).where(
        VerificationChallenge.identifier_hash == hashing.identifier_hash(held))).scalars().all()
    assert ours.keys() == theirs.keys()
    for (index, _), answer in theirs.items():
        assert not (answer[0] == 303 and "/status" in str(answer[1])), "a stranger's identifier signs nobody in"
        if index in signed_in:
            assert answer[0] == 422, "the code that let the member in is only a wrong code for a stranger"
        else:
            assert ours[index, _] == answer, f"answer to action {index} differs for {actions}"
    return refused, "locked" in retired, signed_in


def test_the_generated_journeys_do_sign_a_member_in(tight: None, app: FastAPI, session: Session,
                                                    session_factory: sessionmaker[Session]) -> None:
    """The property above is not vacuous: its member does get in with the code from the outbox."""
    member(session, "PM99999", email="pm99999@kent.example.org")
    signed_in: dict[int, int] = {}
    actions = [("check", 0), ("jobs", 0), ("wrong", 1), ("check", 1), ("right", 1), ("page", 0)]
    answers, typed = play(app, session, session_factory, "PM99999", actions, network=251,
                          email="pm99999@kent.example.org", signed_in=signed_in)
    assert signed_in == {4: 1} and answers[2, 0][0] == 422 and answers[5, 0][0] == 200
