"""Without the password, nobody can keep a staff member out: failures slow and lock whoever makes them,
a browser that has signed in as the person before keeps its own counter (OWASP's device cookies), the
sign-in limit per address counts failures only, and a pattern of failures raises an alert."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from tests.auth.conftest import PASSWORD
from tests.auth.web import post_form, sign_in
from tests.operators import Operator

HOME = ("203.0.113.20", 40000)  # the person's usual browser
NEW = ("203.0.113.21", 40000)  # a browser the person never signed in from
OFFICE = ("192.0.2.50", 40000)  # one address for a whole office behind NAT


@pytest.fixture
def person(session: Session) -> Callable[..., Operator]:
    def make(email: str = "pat@example.org", role: Role = Role.AGENT) -> Operator:
        created = auth_service.create_staff(session, email=email, role=role, password=PASSWORD, actor="test")
        session.commit()
        return Operator(created.user.email, PASSWORD, created.totp_secret)

    return make


@pytest.fixture
def browsers(app: FastAPI) -> Iterator[Callable[[tuple[str, int]], TestClient]]:
    opened: list[TestClient] = []

    def open_at(address: tuple[str, int]) -> TestClient:
        client = TestClient(app, follow_redirects=False, client=address)
        client.__enter__()
        opened.append(client)
        return client

    yield open_at
    for client in opened:
        client.__exit__(None, None, None)


def password_step(client: TestClient, email: str, password: str):  # type: ignore[no-untyped-def]
    return post_form(client, "/staff/login", "/staff/login", email=email, password=password)


def guess_from_many_addresses(open_at: Callable[[tuple[str, int]], TestClient], email: str, times: int) -> None:
    for i in range(times):
        outsider = open_at((f"198.51.100.{i + 1}", 50000))
        assert password_step(outsider, email, f"a wrong guess {i}").status_code == 422


def test_an_outsider_cannot_keep_a_person_out_of_a_browser_they_signed_in_from(
        browsers: Callable[[tuple[str, int]], TestClient], person: Callable[..., Operator], tight_limits: None) -> None:
    pat = person()
    usual = browsers(HOME)
    assert sign_in(usual, pat).status_code == 303
    assert post_form(usual, "/staff", "/staff/logout").status_code == 303
    guess_from_many_addresses(browsers, pat.email, 5)  # tight_limits: the account locks after 5

    # A browser new to the account is locked out for a while, with the usual answer...
    refused = password_step(browsers(NEW), pat.email, pat.password)
    assert refused.status_code == 422 and auth_service.GENERIC_REFUSAL.split(",")[0] in refused.text
    # ...but the person's own browser gets through.
    assert sign_in(usual, pat).status_code == 303
    assert usual.get("/staff").status_code == 200


def test_failures_slow_the_client_that_makes_them_not_the_person(
        browsers: Callable[[tuple[str, int]], TestClient], person: Callable[..., Operator], tight_limits: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings

    monkeypatch.setenv("PORTAL_LOGIN_BACKOFF_BASE_SECONDS", "600")  # the back-off outlasts the test
    get_settings.cache_clear()
    pat = person()
    outsider = browsers(("198.51.100.7", 50000))
    for i in range(4):  # tight_limits: back-off after 3
        assert password_step(outsider, pat.email, f"a wrong guess {i}").status_code == 422
    assert password_step(outsider, pat.email, pat.password).status_code == 422, "the guesser is slowed down"
    # The person, from a browser they never used before, is not.
    assert sign_in(browsers(NEW), pat).status_code == 303


def test_the_device_cookie_is_host_only_secure_and_signs_in_only_its_own_person(
        monkeypatch: pytest.MonkeyPatch, session_factory, person: Callable[..., Operator],  # type: ignore[no-untyped-def]
        tight_limits: None) -> None:
    from app.config import get_settings
    from app.main import create_app

    pat, sam = person(), person("sam@example.org")
    monkeypatch.setenv("PORTAL_PUBLIC_BASE_URL", "https://portal.example.org")
    get_settings.cache_clear()
    app = create_app(run_embedded_worker=False)
    app.state.session_factory = session_factory
    with TestClient(app, base_url="https://portal.example.org", follow_redirects=False, client=HOME) as usual:
        done = sign_in(usual, pat)
        device = next(h for h in done.headers.get_list("set-cookie") if h.startswith("__Host-portal_device="))
        assert all(a in device.lower() for a in ("secure", "httponly", "path=/", "max-age=")), device
        assert "domain" not in device.lower()
        post_form(usual, "/staff", "/staff/logout")
        for i in range(5):  # Sam's account locks for browsers new to Sam
            with TestClient(app, base_url="https://portal.example.org", follow_redirects=False,
                            client=(f"198.51.100.{i + 1}", 1)) as outsider:
                password_step(outsider, sam.email, f"a wrong guess {i}")
        # Pat's device cookie says nothing about Sam.
        assert password_step(usual, sam.email, sam.password).status_code == 422
    get_settings.cache_clear()


def test_a_whole_office_signs_in_at_once_but_failures_from_it_are_limited(
        browsers: Callable[[tuple[str, int]], TestClient], person: Callable[..., Operator]) -> None:
    agents = [person(f"agent{i}@example.org") for i in range(8)]
    for agent in agents:  # 16 requests from one address, within a minute
        assert sign_in(browsers(OFFICE), agent).status_code == 303
    guesser = browsers(OFFICE)
    answers = [password_step(guesser, f"guess{i}@example.org", "a wrong guess!").status_code for i in range(11)]
    assert answers == [422] * 10 + [429], "LIMIT_STAFF_LOGIN: 10 failures a minute per address"


def test_the_sign_in_ticket_works_once(app: FastAPI, browsers: Callable[[tuple[str, int]], TestClient],
                                       person: Callable[..., Operator]) -> None:
    pat = person()
    mine = browsers(HOME)
    first = password_step(mine, pat.email, pat.password)
    ticket = {name: value for name, value in mine.cookies.items() if name.endswith("portal_signin")}
    assert first.status_code == 303 and ticket
    assert post_form(mine, first.headers["location"], "/staff/login/code", code=pat.code()).status_code == 303
    # Someone who copied the ticket, even with the next code, gets nowhere once it was used.
    with TestClient(app, follow_redirects=False, client=NEW, cookies=ticket) as copy:
        assert copy.get("/staff/login/code").headers["location"] == "/staff/login"


def test_a_pattern_of_failures_against_one_account_raises_an_alert(
        app: FastAPI, browsers: Callable[[tuple[str, int]], TestClient], person: Callable[..., Operator],
        tight_limits: None, caplog: pytest.LogCaptureFixture) -> None:
    def alerts() -> float:
        with TestClient(app, client=("127.0.0.1", 1)) as operator:
            page = operator.get("/metrics").text
        found = re.search(r'^portal_staff_sign_in_alerts_total\{scope="account"\} (\S+)$', page, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    pat = person()
    before = alerts()
    with caplog.at_level(logging.WARNING):
        guess_from_many_addresses(browsers, pat.email, 5)
    assert alerts() == before + 1
    logged = [r.getMessage() for r in caplog.records if "staff sign-in alert" in r.getMessage()]
    assert len(logged) == 1 and "staff:" in logged[0] and pat.email not in logged[0]


def test_in_production_the_sign_in_cookies_are_host_only_even_behind_plain_http(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.auth import devices, pending
    from app.config import get_settings

    for name, value in {"ENV": "production", "PUBLIC_BASE_URL": "http://portal.example.org",
                        "SECRET_KEY": "k" * 40, "AUDIT_KEY": "a" * 40, "PII_KEY": "k1:" + "B" * 43 + "="}.items():
        monkeypatch.setenv(f"PORTAL_{name}", value)
    get_settings.cache_clear()
    try:
        assert devices.cookie_name() == "__Host-portal_device"
        assert pending.cookie_name() == "__Host-portal_signin"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
