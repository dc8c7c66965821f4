"""Hostile form values: every field of every form, posted non-ASCII, NUL, control characters, over-long and
wrong-type values, gets a 4xx (or the page again), never a 500. Generated from the app's own route table,
so a new form is covered the day it is added; and a client that keeps causing errors cannot flood the log.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Iterator
from urllib.parse import quote_plus

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import StaffUser
from app.config import Settings
from app.middleware import ErrorLogLimiter
from tests.web.access_rules import OWN_CHECK, PUBLIC, RULES, STAFF, Route
from tests.web.access_rules import routes as route_table
from tests.web.test_access_matrix import ANONYMOUS, UNSAFE, _as, _csrf, _url, people  # noqa: F401

# Raw urlencoded values (already percent-encoded where they need to be), so that bytes that are not UTF-8
# reach the edge as a hostile client sends them.
HOSTILE: dict[str, str] = {
    "NUL": "ann%00%40example.org",
    "control characters": "%1B%5B31m%07%08%7F",
    "non-ASCII": quote_plus("Siân ✓ 漢字 \u202egnp.exe 🙂"),
    "not UTF-8": "%FF%FE%C3%28",
    "encoded surrogate": "%ED%A0%80",
    "over-long": "x" * 12_000,
    "word for a number": "twelve",
    "huge number": "9" * 40,
    "negative number": "-" + "9" * 30,
    "float overflow": "1e999",
    "not a date": "2026-02-30T25%3A61",
}
# A field the model does not name, and the CSRF field itself (bad tokens are refused, never a crash).
CSRF_HOSTILE = {"non-ASCII token": quote_plus("tökén"), "NUL token": "%00", "long token": "a" * 5000}


@pytest.fixture
def roomy_app(session_factory: sessionmaker[Session]) -> FastAPI:
    """The real app, with request limits high enough that every hostile value reaches its form."""
    from app.main import create_app

    roomy = {name: "100000/minute" for name in Settings.model_fields if name.startswith("LIMIT_")}
    app = create_app(Settings(**roomy), run_embedded_worker=False)
    app.state.session_factory = session_factory
    return app


def form_fields_of(route: Route) -> list[str]:
    """The fields a route reads: its form model's fields, and any it reads from the posted fields by name."""
    endpoint = route.dependant.call
    source = inspect.getsource(endpoint)
    names: list[str] = []
    for model_name in re.findall(r"parse_form\((\w+)", source):
        model = endpoint.__globals__[model_name]
        names += list(model.model_fields)
    names += re.findall(r"fields(?:\.get\(|\[)\"(\w+)\"", source)
    return list(dict.fromkeys(names))


def _who(rule: object) -> str:
    if isinstance(rule, tuple):
        return rule[0]
    return "agent" if rule == STAFF else ANONYMOUS


def _post(client: TestClient, url: str, body: str, **headers: str | bytes) -> int:
    return client.post(url, content=body.encode("latin-1"),
                       headers={"content-type": "application/x-www-form-urlencoded", **headers}).status_code


def _forms(app: FastAPI) -> Iterator[tuple[Route, list[str]]]:
    for route in route_table(app):
        if route.method in UNSAFE and RULES.get(route.key) not in (OWN_CHECK, None):
            yield route, form_fields_of(route)


def test_the_forms_are_found(roomy_app: FastAPI) -> None:
    found = {route.path: fields for route, fields in _forms(roomy_app) if route.method == "POST"}
    assert {"email", "password"} <= set(found["/staff/login"])
    assert {"name", "phone", "window_start", "window_end", "topic", "urgent", "passphrase"} <= set(found["/callback"])
    assert {"identifier"} <= set(found["/check"]) and {"reference"} <= set(found["/verify-message"])
    assert len(found) >= 20


def test_every_field_of_every_form_answers_hostile_values_without_a_500(
        roomy_app: FastAPI, session: Session, people: dict[str, StaffUser]) -> None:  # noqa: F811
    crashed = []
    tried = 0
    with TestClient(roomy_app, follow_redirects=False) as client:
        for route, fields in _forms(roomy_app):
            who = _who(RULES.get(route.key, PUBLIC))
            url = _url(route, people)
            for target in fields:
                _as(client, session, who, people)
                token = _csrf(client, who)
                for label, raw in HOSTILE.items():
                    body = "&".join([f"csrf_token={token}"] + [f"{name}={raw if name == target else '1'}"
                                                               for name in fields])
                    status = _post(client, url, body)
                    tried += 1
                    if status >= 500:
                        crashed.append(f"{route.method} {route.path} {target}={label}: {status}")
            _as(client, session, who, people)
            for label, raw in CSRF_HOSTILE.items():
                status = _post(client, url, f"csrf_token={raw}&" + "&".join(f"{n}=1" for n in fields))
                tried += 1
                if status != 403:
                    crashed.append(f"{route.method} {route.path} csrf_token={label}: {status}, not 403")
            status = _post(client, url, "a=1", **{"x-csrf-token": "tökén".encode()})
            if status != 403:
                crashed.append(f"{route.method} {route.path} X-CSRF-Token non-ASCII: {status}, not 403")
    assert tried > 300
    assert not crashed, "\n".join(crashed)


def test_a_nul_in_the_staff_sign_in_email_is_a_clear_400(roomy_app: FastAPI) -> None:
    with TestClient(roomy_app, follow_redirects=False) as client:
        token = _csrf(client, ANONYMOUS)
        answer = client.post("/staff/login", data={"csrf_token": token, "email": "ann\x00@example.org",
                                                   "password": "whatever"})
        assert answer.status_code == 400
        assert "characters that cannot be accepted" in answer.text and "nothing was changed" in answer.text
        welsh = client.post("/check?lang=cy", data={"csrf_token": token, "identifier": "\x00"})
        assert welsh.status_code == 400 and "nodau na ellir eu derbyn" in welsh.text


def test_a_control_character_in_an_address_is_a_400(roomy_app: FastAPI) -> None:
    with TestClient(roomy_app, follow_redirects=False) as client:
        assert client.get("/staff/login?next=%00").status_code == 400
        assert client.get("/check?lang=en%1B").status_code == 400
        assert client.get("/check?ok=caf%C3%A9").status_code == 200


def test_a_non_ascii_csrf_token_is_refused_as_a_wrong_one(roomy_app: FastAPI) -> None:
    with TestClient(roomy_app, follow_redirects=False) as client:
        _csrf(client, ANONYMOUS)  # the visitor has a pre-session cookie, so the token is compared
        assert client.post("/check", data={"csrf_token": "ŧøķëñ", "identifier": "1"}).status_code == 403
        assert _post(client, "/check", "identifier=1", **{"x-csrf-token": "ŧøķëñ".encode()}) == 403


def test_one_clients_errors_are_logged_in_full_a_few_times_then_summarised(
        roomy_app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    from tests.web.conftest import router

    roomy_app.include_router(router)
    with caplog.at_level(logging.ERROR, logger="app.access"):
        with TestClient(roomy_app, client=("203.0.113.9", 1000), raise_server_exceptions=False) as one:
            assert {one.get("/t/boom").status_code for _ in range(60)} == {500}
        with TestClient(roomy_app, client=("198.51.100.7", 1000), raise_server_exceptions=False) as two:
            assert two.get("/t/boom").status_code == 500
    tracebacks = [r for r in caplog.records if r.exc_info]
    notices = [r for r in caplog.records if "counting the rest" in r.getMessage()]
    assert len(tracebacks) == 6, "five from the first client, one from the second"
    assert len(notices) == 1 and "GET /t/boom RuntimeError" in notices[0].getMessage()


def test_the_error_log_summary_comes_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    limiter = ErrorLogLimiter(burst=2, interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="app.access"):
        assert [limiter.allow("a", "POST /x") for _ in range(500)].count(True) == 2
        now[0] += 61
        assert limiter.allow("a", "POST /x") is True
        # A client that stops is summed up too, by the sweep after any later request.
        assert [limiter.allow("b", "POST /y") for _ in range(10)].count(True) == 2
        limiter.sweep()
        now[0] += 60
        limiter.sweep()
    lines = [r.getMessage() for r in caplog.records]
    assert sum("counting the rest" in line for line in lines) == 2
    assert [line for line in lines if "were not logged" in line] == [
        "unhandled errors: 498 more from one client in 61 s were not logged",
        "unhandled errors: 8 more from one client in 60 s were not logged"]
