"""Request limits on checking your status and on callbacks: per client address and per identifier, 429 past them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.config import Settings
from app.lookup import hashing
from tests.callbacks.test_callbacks import window
from tests.lookup.helpers import csrf, drain, member, post


@pytest.fixture
def limited(session_factory: sessionmaker[Session]) -> Iterator[FastAPI]:
    from app.main import create_app

    drain()
    app = create_app(Settings(
        LIMIT_CHECK_REQUEST="5/minute", LIMIT_CHECK_REQUEST_PER_KEY="2/minute",
        LIMIT_CHECK_CODE="8/minute", LIMIT_CHECK_CODE_PER_KEY="3/minute",
        LIMIT_CALLBACK_REQUEST="3/minute", LIMIT_CALLBACK_REQUEST_PER_KEY="1/hour",
        LIMIT_CALLBACK_CANCEL="5/minute", LIMIT_CALLBACK_CANCEL_PER_KEY="2/hour"), run_embedded_worker=False)
    app.state.session_factory = session_factory
    yield app
    drain()


def client(app: FastAPI, address: str = "10.0.0.1") -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 1234))


def check(web: TestClient, identifier: str) -> int:
    return post(web, "/check", {"identifier": identifier}).status_code  # type: ignore[no-any-return]


def test_code_requests_are_limited_per_identifier(limited: FastAPI) -> None:
    with client(limited) as web:
        assert [check(web, "L400001"), check(web, " l400001 ")] == [303, 303]
        refused = post(web, "/check", {"identifier": "L400001"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert check(web, "L400002") == 303, "another identifier from the same address still goes"


def test_code_requests_are_limited_per_client_address(limited: FastAPI) -> None:
    with client(limited, "10.0.0.2") as web, client(limited, "10.0.0.3") as other:
        assert [check(web, f"L41000{i}") for i in range(5)] == [303] * 5
        assert check(web, "L410009") == 429
        assert check(other, "L410009") == 303, "another address is counted apart"


def test_code_checks_are_limited_per_identifier_before_the_code_runs_out_of_tries(limited: FastAPI) -> None:
    with client(limited, "10.0.0.4") as web:
        check(web, "L420001")
        answers = [post(web, "/check/code", {"code": "111111"}).status_code for _ in range(4)]
        assert answers == [422, 422, 422, 429]


def test_callback_requests_are_limited_per_phone_and_per_address(limited: FastAPI) -> None:
    fields = {"name": "Lee", "topic": "other", "passphrase": "kestrel", **window()}
    with client(limited, "10.0.0.5") as web, client(limited, "10.0.0.6") as other:
        assert post(web, "/callback", {**fields, "phone": "07700 900501"}).status_code == 303
        assert post(other, "/callback", {**fields, "phone": "+44 7700 900501"}).status_code == 429, "per phone"
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
