"""Hostile input on every form of checking your status and callbacks: refused clearly, or stored and shown escaped."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.callbacks import service
from app.callbacks.models import CallbackRequest
from tests.callbacks.test_callbacks import window
from tests.lookup.helpers import csrf, post

SCRIPT = "<script>alert(1)</script>"
HOSTILE = {
    "very long": "9" * 300,
    "control characters": "123\x00456\x07",
    "script tag": SCRIPT,
    "SQL fragment": "1' OR '1'='1'; DROP TABLE members; --",
    "emoji": "😀😀😀",
    "right-to-left override": "\u202e654321",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_identifier_field_refuses_it_with_a_clear_message(web: TestClient, value: str) -> None:
    answer = post(web, "/check", {"identifier": value})
    assert answer.status_code == 422
    assert "There is a problem" in answer.text and 'href="#identifier"' in answer.text
    assert SCRIPT not in answer.text


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_code_field_refuses_it_with_a_clear_message(web: TestClient, value: str) -> None:
    post(web, "/check", {"identifier": "H500001"})
    answer = post(web, "/check/code", {"code": value})
    assert answer.status_code == 422 and 'href="#code"' in answer.text
    assert SCRIPT not in answer.text


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_cancel_form_refuses_it(web: TestClient, value: str) -> None:
    answer = post(web, "/callback/cancel", {"reference": value, "phone": value})
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
