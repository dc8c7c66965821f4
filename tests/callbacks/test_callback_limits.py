"""What an outsider can do with /callback and its limits (issue 17, items 20 and 21): numbers abroad are refused,
texts to numbers not on file stop at an hourly ceiling (the request is still taken, and the page is the same),
a phone gets few texts whoever asks, "urgent" from strangers never outranks a verified member, and limits
count what costs something (a text), never typos, and never on a key strangers share."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.callbacks import queue, service
from app.callbacks.models import CallbackRequest, CallbackText, Priority
from app.config import get_settings
from app.db import utcnow
from app.messages.models import TransactionalMessage
from app.providers import outbox
from tests.callbacks.queue_helpers import agent
from tests.callbacks.test_callbacks import window
from tests.lookup.helpers import last_code, member, post, run_jobs

FIELDS = {"name": "Lee", "topic": "other", "passphrase": "kestrel"}


@contextmanager
def settings(monkeypatch: pytest.MonkeyPatch, **values: str) -> Iterator[None]:
    for name, value in values.items():
        monkeypatch.setenv(f"PORTAL_{name}", value)
    get_settings.cache_clear()
    try:
        yield
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def visitor(app: FastAPI, n: int) -> TestClient:
    """A different visitor (a different client address) each time."""
    return TestClient(app, follow_redirects=False, client=(f"10.17.{n // 250}.{n % 250 + 1}", 1234))


def ask(web: TestClient, phone: str, **fields: str) -> object:
    return post(web, "/callback", {**FIELDS, "phone": phone, **window(), **fields})


def requests(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(CallbackRequest)).scalar_one())


def texts_to(session: Session, phone: str) -> int:
    index = service.pii.phone_index(phone)
    return int(session.execute(select(func.count()).where(CallbackText.phone_index == index)).scalar_one())


def metrics(app: FastAPI) -> str:
    with TestClient(app, client=("127.0.0.1", 1000)) as operator:
        return operator.get("/metrics").text


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("phone", ["+371 21 234 567", "+53 5 1234567", "+252 61 1234567", "+7 912 345 6789"])
def test_a_number_abroad_is_refused_with_a_clear_message_and_gets_no_text(web: TestClient, session: Session,
                                                                          phone: str) -> None:
    answer = ask(web, phone)
    assert answer.status_code == 422
    assert "We can only call phone numbers in United Kingdom, Guernsey, Jersey, Isle of Man" in answer.text
    assert get_settings().HELPLINE_NUMBER in answer.text
    assert requests(session) == 0 and session.execute(select(TransactionalMessage)).first() is None


def test_crown_dependencies_are_welcome_and_the_list_is_a_setting(app: FastAPI, session: Session,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with visitor(app, 1) as web:
        assert ask(web, "+44 7797 123456").status_code == 303, "Jersey"
        assert ask(web, "+44 7624 123456").status_code == 303, "the Isle of Man"
        with settings(monkeypatch, CALLBACK_PHONE_COUNTRIES="GB,LV"):
            assert ask(web, "+371 21 234 567").status_code == 303
            refused = ask(web, "+44 7781 123456")
            assert refused.status_code == 422 and "United Kingdom, Latvia" in refused.text
        welsh = post(web, "/callback?lang=cy", {**FIELDS, "phone": "+53 5 1234567", **window()},
                     form_page="/callback?lang=cy")
        assert welsh.status_code == 422 and "Y Deyrnas Unedig" in welsh.text and "United Kingdom" not in welsh.text


def test_texts_to_numbers_not_on_file_stop_at_the_hourly_ceiling_but_every_request_is_taken(
        app: FastAPI, session: Session, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    before = metrics(app)
    pages = []
    with settings(monkeypatch, CALLBACK_UNKNOWN_TEXTS_PER_HOUR="2"), caplog.at_level(logging.WARNING):
        for n in range(4):
            with visitor(app, 100 + n) as web:
                assert ask(web, f"07700 90070{n}", urgent="on").status_code == 303
                pages.append(web.get("/callback/done").text)
        after = metrics(app)
    assert requests(session) == 4, "every request is taken: nobody loses their call"
    run_jobs(session_factory)
    assert [len(outbox.latest(session, to=f"+44770090070{n}")) for n in range(4)] == [1, 1, 0, 0]
    # The requester past the ceiling sees the same page as the others: only the reference and times differ.
    shapes = {re.sub(r"CB-[0-9A-Z]{4}-[0-9A-Z]{4}|csrf_token\" value=\"[0-9a-f]+", "", page) for page in pages}
    assert len(shapes) == 1
    assert "ceiling" in caplog.text, "operators are warned"
    withheld = 'portal_callback_texts_withheld_total{reason="ceiling"}'
    assert metric(after, withheld) - metric(before, withheld) == 2
    assert metric(after, "portal_callback_texts_not_on_file_last_hour") == 2
    assert metric(after, "portal_callback_texts_not_on_file_ceiling") == 2


def test_a_phone_gets_a_few_texts_whoever_asks_and_its_owner_still_gets_their_request(
        app: FastAPI, session: Session, session_factory: sessionmaker[Session]) -> None:
    victim = "07700 900720"
    # Someone asks for the victim's phone, reads the reference off their own done page, cancels, and asks again.
    for n in range(5):
        with visitor(app, 200 + n) as web:
            assert ask(web, victim).status_code == 303
            reference = re.search(r"CB-[0-9A-Z]{4}-[0-9A-Z]{4}", web.get("/callback/done").text).group(0)  # type: ignore[union-attr]
            assert post(web, "/callback/cancel", {"reference": reference, "phone": victim}).status_code == 303
    assert texts_to(session, "+447700900720") == get_settings().CALLBACK_TEXTS_PER_PHONE_HOUR == 3
    with visitor(app, 210) as owner:
        assert ask(owner, victim, name="The Owner").status_code == 303, "the owner is never refused"
        assert "We will call you" in owner.get("/callback/done").text
    assert service.open_request_for(session, phone=victim) is not None
    run_jobs(session_factory)
    assert len(outbox.latest(session, to="+447700900720")) == 3


def test_invalid_forms_never_count_against_the_phone(app: FastAPI, session: Session) -> None:
    for n in range(5):  # five typos in other fields, from wherever: no request made, no text sent
        with visitor(app, 300 + n) as web:
            assert ask(web, "07700 900730", window_start="next tuesday").status_code == 422
    with visitor(app, 310) as owner:
        assert ask(owner, "07700 900730").status_code == 303, "the owner's real request goes through"
    assert requests(session) == 1


def test_phones_that_do_not_parse_share_no_limit(app: FastAPI) -> None:
    for n in range(8):  # eight strangers, each mistyping their phone once
        with visitor(app, 400 + n) as web:
            assert ask(web, f"o77oo {chr(97 + n)}").status_code == 422, "a typo is a form error, never a 429"


def test_one_address_is_still_limited(app: FastAPI) -> None:
    limit = int(get_settings().LIMIT_CALLBACK_REQUEST.split("/")[0])
    with visitor(app, 500) as web:
        answers = [ask(web, f"07700 9008{n:02d}").status_code for n in range(limit + 1)]
    assert answers[:limit] == [303] * limit and answers[-1] == 429


def test_cancel_guesses_share_no_key_and_never_lock_out_the_requester(app: FastAPI, session: Session) -> None:
    for n in range(7):  # strangers typing "abc" as a reference: a form error each, not a shared limit
        with visitor(app, 600 + n) as web:
            assert post(web, "/callback/cancel", {"reference": "abc", "phone": "07700 900740"}).status_code == 422
    with visitor(app, 610) as requester:
        ask(requester, "07700 900741")
        reference = re.search(r"CB-[0-9A-Z]{4}-[0-9A-Z]{4}", requester.get("/callback/done").text).group(0)  # type: ignore[union-attr]
        with visitor(app, 611) as guesser:
            answers = [post(guesser, "/callback/cancel", {"reference": reference, "phone": f"07700 9007{n:02d}"})
                       .status_code for n in range(50, 57)]
        assert 429 in answers, "guessing the phone of a reference is limited"
        assert post(requester, "/callback/cancel", {"reference": reference, "phone": "07700 900741"}).status_code == 303


@pytest.fixture
def always_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with settings(monkeypatch, HELPLINE_HOURS_WEEKDAY="00:00-24:00", HELPLINE_HOURS_WEEKEND="00:00-24:00",
                  HELPLINE_HOURS_BANK_HOLIDAY="00:00-24:00"):
        yield


@pytest.mark.usefixtures("always_open")
def test_urgent_from_strangers_never_outranks_a_verified_member(session: Session) -> None:
    now = utcnow()
    ask_now = {"window_start": now - timedelta(minutes=5), "window_end": now + timedelta(hours=2),
               "topic": "other", "passphrase": "otter", "language": "en", "name": "Pat"}
    strangers = [service.request_callback(session, member_id=None, phone=f"07700 9007{60 + n}", urgent=True,
                                          **ask_now).request for n in range(3)]
    calm = service.request_callback(session, member_id=None, phone="07700 900770", urgent=False, **ask_now).request
    verified = member(session, "C310001", email="v1@kent.example.org", phone="07700 900771")
    plain = service.request_callback(session, member_id=verified, phone="07700 900771", urgent=False,
                                     **ask_now).request
    assert plain is not None and plain.priority == Priority.NORMAL
    assert all(s is not None and s.priority == Priority.UNVERIFIED_URGENT for s in strangers)
    assert calm is not None and calm.priority == Priority.UNVERIFIED
    me = agent(session)
    first = queue.take_next(session, staff_id=me.id)
    assert first is not None and first.id == plain.id, "the verified member is called before any stranger"


def test_a_signed_in_members_own_phone_on_file_is_not_held_by_the_ceiling(
        app: FastAPI, session: Session, session_factory: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch) -> None:
    member(session, "C320001", email="", phone="07700 900781")  # no email: confirmations go by text
    with settings(monkeypatch, CALLBACK_UNKNOWN_TEXTS_PER_HOUR="0"), visitor(app, 700) as web:
        post(web, "/check", {"identifier": "C320001"})
        run_jobs(session_factory)
        assert post(web, "/check/code", {"code": last_code(session, "+447700900781")}).status_code == 303
        assert ask(web, "07700 900781").status_code == 303
        run_jobs(session_factory)
        confirmation = outbox.latest(session, to="+447700900781", last=1)[0]
        assert "CB-" in confirmation.body, "a member's own number on file is not a stranger's"
        with visitor(app, 701) as stranger:
            assert ask(stranger, "07700 900782").status_code == 303
        run_jobs(session_factory)
        assert outbox.latest(session, to="+447700900782") == [], "a number not on file waits for the next hour"


@pytest.mark.parametrize("field,value", [("reference", "<script>alert(1)</script>"), ("reference", "' OR 1=1 --"),
                                         ("window_start", "\u202e2026-12-24T18:30"), ("window_end", "99999-01-01"),
                                         ("phone", "😀"), ("reference", "CB-" + "Z" * 17)])
def test_the_change_form_refuses_nonsense_with_a_form_error(web: TestClient, session: Session, field: str,
                                                            value: str) -> None:
    ask(web, "07700 900790")
    request = session.execute(select(CallbackRequest)).scalars().one()
    fields = {"reference": request.reference, "phone": "07700 900790", **window(), field: value}
    answer = post(web, "/callback/change", fields, form_page="/callback/change")
    assert 400 <= answer.status_code < 500 and "<script>alert" not in answer.text
    for path in (f"/callback/change?reference={value}", f"/callback/cancel?reference={value}"):
        assert web.get(path).status_code == 200
