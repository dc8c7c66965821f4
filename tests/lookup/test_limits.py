"""Request limits on checking your status and on callbacks: per client address, 429 past them. Per identifier
only what costs us is capped (codes sent), answering as usual: typing someone's identifier never keeps them out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.config import Settings, get_settings
from app.lookup import hashing
from app.providers import outbox
from tests.callbacks.test_callbacks import window
from tests.lookup.helpers import csrf, drain, last_code, member, post, run_jobs, time_passes


@pytest.fixture
def limited(session_factory: sessionmaker[Session]) -> Iterator[FastAPI]:
    from app.main import create_app

    drain()
    app = create_app(Settings(
        LIMIT_CHECK_REQUEST="5/minute", LIMIT_CHECK_CODE="8/minute",
        LIMIT_CALLBACK_REQUEST="3/minute",
        LIMIT_CALLBACK_CANCEL="5/minute", LIMIT_CALLBACK_CANCEL_PER_KEY="2/hour"), run_embedded_worker=False)
    app.state.session_factory = session_factory
    yield app
    drain()


def client(app: FastAPI, address: str = "10.0.0.1") -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 1234))


def check(web: TestClient, identifier: str) -> int:
    return post(web, "/check", {"identifier": identifier}).status_code  # type: ignore[no-any-return]


def test_code_requests_are_limited_per_client_address(limited: FastAPI) -> None:
    with client(limited, "10.0.0.2") as web, client(limited, "10.0.0.3") as other:
        assert [check(web, f"L41000{i}") for i in range(5)] == [303] * 5
        assert check(web, "L410009") == 429
        assert check(other, "L410009") == 303, "another address is counted apart"


def test_checks_for_someones_identifier_from_many_addresses_neither_keep_them_out_nor_flood_them(
        app: FastAPI, session: Session, session_factory: sessionmaker[Session]) -> None:
    member(session, "L400001", email="l4@kent.example.org")
    drain()
    # For most of an hour, someone else asks for the member's code from address after address, waiting
    # each time for the code to run out.
    for round_ in range(5):
        for n in range(6):
            with client(app, f"10.9.{round_}.{n}") as attacker:
                assert check(attacker, "L400001") == 303
        run_jobs(session_factory)
        time_passes(session, 11 * 60)
    sent = outbox.latest(session, to="l4@kent.example.org")
    assert 1 <= len(sent) <= get_settings().CHECK_MAX_SENDS, "codes to one contact are capped per hour"
    with client(app, "10.0.0.9") as owner:
        asked = post(owner, "/check", {"identifier": "L400001"})
        assert asked.status_code == 303 and asked.headers["location"] == "/check/code", "not 429: the usual page"
        assert owner.get("/check/code").status_code == 200
        run_jobs(session_factory)
        assert len(outbox.latest(session, to="l4@kent.example.org")) == len(sent), "no code past the cap"
        code = last_code(session, "l4@kent.example.org")
        signed_in = post(owner, "/check/code", {"code": code}, form_page="/check/code")
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/status"


def test_checks_while_a_code_works_send_nothing_more(app: FastAPI, session: Session,
                                                     session_factory: sessionmaker[Session]) -> None:
    member(session, "L400002", email="l5@kent.example.org")
    drain()
    for n in range(20):
        with client(app, f"10.8.0.{n}") as attacker:
            assert check(attacker, "L400002") == 303
        run_jobs(session_factory)
    assert len(outbox.latest(session, to="l5@kent.example.org")) == 1
    with client(app, "10.0.0.10") as owner:
        assert check(owner, "L400002") == 303
        run_jobs(session_factory)
        code = last_code(session, "l5@kent.example.org")
        assert post(owner, "/check/code", {"code": code}, form_page="/check/code").status_code == 303


def test_callback_requests_are_limited_per_address_not_per_phone(limited: FastAPI) -> None:
    fields = {"name": "Lee", "topic": "other", "passphrase": "kestrel", **window()}
    with client(limited, "10.0.0.5") as web, client(limited, "10.0.0.6") as other:
        assert post(web, "/callback", {**fields, "phone": "07700 900501"}).status_code == 303
        # The phone's own texts are limited where they are sent (tests/callbacks/test_callback_limits.py).
        assert post(other, "/callback", {**fields, "phone": "+44 7700 900501"}).status_code == 303, "not per phone"
        assert post(web, "/callback", {**fields, "phone": "07700 900502"}).status_code == 303
        assert post(web, "/callback", {**fields, "phone": "07700 900503"}).status_code == 303
        assert post(web, "/callback", {**fields, "phone": "07700 900504"}).status_code == 429, "per address"


def test_cancelling_is_limited_per_reference(limited: FastAPI) -> None:
    with client(limited, "10.0.0.7") as web:
        answers = [post(web, "/callback/cancel", {"reference": "CB-AAAA-BBBB", "phone": f"07700 90060{i}"}).status_code
                   for i in range(3)]
        assert answers == [422, 422, 429]


def test_every_step_is_audited_with_a_keyed_hash_not_the_identifier(limited: FastAPI, session: Session) -> None:
    member(session, "L430001", email="l1@kent.example.org")
    with client(limited, "10.0.0.8") as web:
        check(web, "L430001")
        post(web, "/check/code", {"code": "123456"})
        web.post("/check/code/resend", data={"csrf_token": csrf(web, "/check/code")})
    events = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    actions = [e.action for e in events]
    assert "check.code_requested" in actions and "check.code_wrong" in actions and "check.resend_refused" in actions
    expected = hashing.identifier_hash("L430001")
    requested = next(e for e in events if e.action == "check.code_requested")
    assert requested.details["identifier"] == expected
    assert all("L430001" not in f"{e.subject}{e.details}" for e in events)
