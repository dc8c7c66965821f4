"""Hostile input on every form of checking your status and callbacks: refused clearly, or stored and shown escaped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.callbacks import service
from app.callbacks.models import CallbackRequest
from tests.callbacks.test_callbacks import window
from tests.lookup.helpers import csrf, drain, post

SCRIPT = "<script>alert(1)</script>"
HOSTILE = {
    "very long": "9" * 300,
    "control characters": "123\x00456\x07",
    "script tag": SCRIPT,
    "SQL fragment": "1' OR '1'='1'; DROP TABLE members; --",
    "emoji": "😀😀😀",
    "right-to-left override": "\u202e654321",
}


def refused_at_the_edge(answer, value: str) -> bool:  # type: ignore[no-untyped-def]
    """Control characters never reach a form: the edge refuses the request with 400 (and its page)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        assert answer.status_code == 400 and SCRIPT not in answer.text
        return True
    return False


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_identifier_field_refuses_it_with_a_clear_message(web: TestClient, value: str) -> None:
    answer = post(web, "/check", {"identifier": value})
    if refused_at_the_edge(answer, value):
        return
    assert answer.status_code == 422
    assert "There is a problem" in answer.text and 'href="#identifier"' in answer.text
    assert SCRIPT not in answer.text


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_code_field_refuses_it_with_a_clear_message(web: TestClient, value: str) -> None:
    post(web, "/check", {"identifier": "H500001"})
    answer = post(web, "/check/code", {"code": value})
    if refused_at_the_edge(answer, value):
        return
    assert answer.status_code == 422 and 'href="#code"' in answer.text
    assert SCRIPT not in answer.text


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_cancel_form_refuses_it(web: TestClient, value: str) -> None:
    answer = post(web, "/callback/cancel", {"reference": value, "phone": value})
    if refused_at_the_edge(answer, value):
        return
    assert answer.status_code == 422 and "There is a problem" in answer.text
    assert SCRIPT not in answer.text


REFUSED = [(field, value) for field in ("name", "passphrase")
           for value in ("Ann\x00Jones", "Ann\u202eJones", "x" * 101)]
REFUSED += [("phone", SCRIPT), ("phone", "1' OR 1=1 --"), ("phone", "😀"), ("topic", SCRIPT), ("window_start", SCRIPT),
            ("window_end", "\u202e2026-12-24T18:30")]


@pytest.mark.parametrize(("field", "value"), REFUSED)
def test_callback_fields_refuse_control_characters_overrides_and_nonsense(web: TestClient, field: str,
                                                                          value: str) -> None:
    fields = {"name": "Ann", "passphrase": "heron", "phone": "07700 900811", "topic": "other", **window()}
    answer = post(web, "/callback", {**fields, field: value})
    if refused_at_the_edge(answer, value):
        return
    assert answer.status_code == 422 and f'href="#{field}"' in answer.text
    assert SCRIPT not in answer.text


def test_callback_names_with_markup_sql_and_emoji_are_stored_as_typed_and_shown_escaped(
        web: TestClient, session: Session) -> None:
    name = SCRIPT + " O'Brien; DROP TABLE members; -- 😀"
    base = {"phone": "07700 900812", "topic": "other", "passphrase": "heron 🦩", **window()}
    assert post(web, "/callback", {"name": name, **base}).status_code == 303
    request = session.execute(select(CallbackRequest)).scalars().one()
    assert service.details(request).name == name and service.details(request).passphrase == "heron 🦩"
    shown = post(web, "/callback", {"name": name, **base, "window_end": "garbled"})
    assert shown.status_code == 422 and SCRIPT not in shown.text and "&lt;script&gt;" in shown.text


def test_a_body_too_big_for_a_form_is_refused(web: TestClient) -> None:
    answer = web.post("/check", data={"identifier": "x" * 40_000, "csrf_token": csrf(web, "/check")})
    assert answer.status_code == 413


@pytest.fixture
def roomy_web(session_factory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app with request limits high enough for every generated value to reach the forms."""
    from app.config import Settings
    from app.main import create_app

    roomy = {name: "100000/minute" for name in Settings.model_fields if name.startswith("LIMIT_")}
    app = create_app(Settings(**roomy), run_embedded_worker=False)
    app.state.session_factory = session_factory
    drain()
    with TestClient(app, follow_redirects=False) as client:
        yield client
    drain()


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(identifier=TEXT, code=TEXT)
def test_any_text_in_the_check_forms_gets_a_page_never_a_500(roomy_web: TestClient, identifier: str,
                                                             code: str) -> None:
    asked = post(roomy_web, "/check", {"identifier": identifier})
    assert asked.status_code in (303, 400, 422), (identifier, asked.status_code)
    answered = post(roomy_web, "/check/code", {"code": code}, form_page="/check")
    assert answered.status_code in (400, 422), (code, answered.status_code)
    resent = post(roomy_web, "/check/code/resend", {}, form_page="/check")
    assert resent.status_code in (303, 422)


@pytest.mark.parametrize("cookie", ["%00", "t%C3%B6k%C3%A9n", "x" * 3000, '"quoted"', "a;b", ""])
def test_a_hostile_check_cookie_is_a_check_that_has_ended(roomy_web: TestClient, cookie: str) -> None:
    token = csrf(roomy_web, "/check")
    roomy_web.cookies.set("portal_check", cookie, path="/check")
    answered = roomy_web.post("/check/code", data={"code": "123456", "csrf_token": token})
    assert answered.status_code == 422 and "expired" in answered.text
    resent = roomy_web.post("/check/code/resend", data={"csrf_token": token})
    assert resent.status_code == 422 and "This check has ended" in resent.text
