"""Wrong codes slow whoever types them, not the owner: tries count per browser, and only a code's much
larger budget across every browser retires it for everyone (issue 17 item 21)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from limits import parse_many
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings
from app.providers import outbox
from tests.lookup.helpers import csrf, drain, last_code, member, post, run_jobs, time_passes

LOCKED = "You have entered a wrong code too many times"


def client(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 1234))


def check(web: TestClient, identifier: str) -> int:
    return post(web, "/check", {"identifier": identifier}).status_code  # type: ignore[no-any-return]


def type_code(web: TestClient, code: str):  # type: ignore[no-untyped-def]
    return post(web, "/check/code", {"code": code}, form_page="/check/code")


def off_by_one(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def signed_in(answer) -> bool:  # type: ignore[no-untyped-def]
    return answer.status_code == 303 and answer.headers["location"] == "/status"  # type: ignore[no-any-return]


def test_someone_burning_their_tries_does_not_keep_the_owner_out(
        app: FastAPI, session: Session, session_factory: sessionmaker[Session]) -> None:
    member(session, "K170001", email="k1@kent.example.org")
    drain()
    tries = get_settings().CHECK_CODE_TRIES
    with client(app, "10.17.0.1") as attacker:
        assert check(attacker, "K170001") == 303
        run_jobs(session_factory)
        code = last_code(session, "k1@kent.example.org")
        answers = [type_code(attacker, off_by_one(code)) for _ in range(tries)]
        assert [a.status_code for a in answers] == [422] * tries
        assert LOCKED in answers[-1].text
        assert LOCKED in type_code(attacker, code).text, "that browser is refused for this code, even the right one"
        assert check(attacker, "K170001") == 303
        assert LOCKED in type_code(attacker, code).text, "checking again in that browser does not start it again"
    with client(app, "10.17.9.9") as owner:
        assert check(owner, "K170001") == 303
        run_jobs(session_factory)
        assert len(outbox.latest(session, to="k1@kent.example.org")) == 1, "the code already out is the one to use"
        landed = type_code(owner, last_code(session, "k1@kent.example.org"))
        assert signed_in(landed)
        assert owner.get("/status").status_code == 200


def test_cycling_new_codes_up_to_the_cap_does_not_keep_the_owner_out(
        app: FastAPI, session: Session, session_factory: sessionmaker[Session]) -> None:
    member(session, "K170002", email="k2@kent.example.org")
    drain()
    settings = get_settings()
    with client(app, "10.17.1.0") as first:
        assert check(first, "K170002") == 303
        cookies = first.cookies
    run_jobs(session_factory)
    for n in range(settings.CHECK_MAX_SENDS):
        # The probe did this from one address over six minutes, within that address's limit on code checks;
        # here the same browser (its cookies) moves address each round, standing in for that minute.
        with TestClient(app, follow_redirects=False, client=(f"10.17.1.{n + 1}", 1234), cookies=cookies) as attacker:
            code = last_code(session, "k2@kent.example.org")
            answers = [type_code(attacker, off_by_one(code)) for _ in range(settings.CHECK_CODE_TRIES)]
            assert [a.status_code for a in answers] == [422] * settings.CHECK_CODE_TRIES
            assert LOCKED in answers[-1].text
            time_passes(session, settings.CHECK_RESEND_SECONDS + 1, identifier="K170002")
            resent = attacker.post("/check/code/resend", data={"csrf_token": csrf(attacker, "/check/code")})
            run_jobs(session_factory)
            if n < settings.CHECK_MAX_SENDS - 1:
                assert resent.status_code == 303
            else:
                assert resent.status_code == 422 and "as many codes as we can" in resent.text
    sent = outbox.latest(session, to="k2@kent.example.org")
    assert len(sent) == settings.CHECK_MAX_SENDS
    with client(app, "10.17.9.8") as owner:
        assert check(owner, "K170002") == 303
        run_jobs(session_factory)
        assert len(outbox.latest(session, to="k2@kent.example.org")) == len(sent), "nothing past the hour's cap"
        assert signed_in(type_code(owner, last_code(session, "k2@kent.example.org"))), "the newest code works"


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("PORTAL_CHECK_CODE_GLOBAL_TRIES", "7")
    get_settings.cache_clear()
    yield 7
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_code_is_retired_for_everyone_once_all_browsers_together_spend_its_budget(
        small_budget: int, app: FastAPI, session: Session, session_factory: sessionmaker[Session],
        caplog: pytest.LogCaptureFixture) -> None:
    member(session, "K170003", email="k3@kent.example.org")
    drain()
    exhausted = REGISTRY.get_sample_value("portal_check_code_budget_exhausted_total") or 0.0
    with client(app, "10.17.9.7") as owner:
        assert check(owner, "K170003") == 303
        run_jobs(session_factory)
        code = last_code(session, "k3@kent.example.org")
        answers = []
        for n in range(3):  # three guessers at three addresses, three wrong codes each: 9 > 7
            with client(app, f"10.17.2.{n}") as guesser:
                assert check(guesser, "K170003") == 303
                answers += [type_code(guesser, off_by_one(code)) for _ in range(3)]
        assert [LOCKED in a.text for a in answers] == [False] * (small_budget - 1) + [True] * (9 - small_budget + 1)
        refused = type_code(owner, code)
        assert refused.status_code == 422 and LOCKED in refused.text, "the code is retired for everyone"
        assert "tried 7 times by all browsers together" in caplog.text
        assert any(r.levelno == logging.WARNING and "retired" in r.getMessage() for r in caplog.records)
        assert REGISTRY.get_sample_value("portal_check_code_budget_exhausted_total") == exhausted + 1
        time_passes(session, 70, identifier="K170003")
        assert check(owner, "K170003") == 303, "the next check sends a new code"
        run_jobs(session_factory)
        assert len(outbox.latest(session, to="k3@kent.example.org")) == 2
        new = last_code(session, "k3@kent.example.org")
        assert signed_in(type_code(owner, new))


def test_one_address_cannot_spend_a_codes_budget_quickly(app: FastAPI, session: Session) -> None:
    member(session, "K170004", email="k4@kent.example.org")
    settings = get_settings()
    hourly = [item for item in parse_many(settings.LIMIT_CHECK_CODE) if item.GRANULARITY.name == "hour"]
    assert hourly and hourly[0].amount < settings.CHECK_CODE_GLOBAL_TRIES, "an hour from one address < a code's budget"
    answers = []
    for n in range(4):  # fresh browsers, one address
        with client(app, "10.17.3.1") as guesser:
            check(guesser, "K170004")
            answers += [type_code(guesser, f"{n}0000{k}").status_code for k in range(3)]
    assert answers == [422] * 10 + [429] * 2, "ten code checks a minute per address"
    with client(app, "10.17.3.2") as elsewhere:
        check(elsewhere, "K170004")
        assert type_code(elsewhere, "123456").status_code == 422, "another address is counted apart"
