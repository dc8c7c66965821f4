"""Many visitors at once, each request its own transaction on committed data: the hourly ceiling on texts to
numbers not on file and the per-phone limit hold exactly (the audit chain's lock orders the counts)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app.callbacks.models import CallbackRequest, CallbackText
from app.config import get_settings
from app.db import default_session_factory, session_scope, utcnow
from tests.callbacks.test_callbacks import window

FIELDS = {"name": "Lee", "topic": "other", "passphrase": "kestrel", **window()}


@pytest.fixture
def real_app(fresh_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    from app.main import create_app

    monkeypatch.setenv("PORTAL_CALLBACK_UNKNOWN_TEXTS_PER_HOUR", "6")
    monkeypatch.setenv("PORTAL_LIMIT_CALLBACK_REQUEST", "1000/minute")
    get_settings.cache_clear()
    yield create_app(run_embedded_worker=False)
    monkeypatch.undo()
    get_settings.cache_clear()


def ask(app: FastAPI, n: int, phone: str) -> int:
    with TestClient(app, follow_redirects=False, client=(f"10.21.{n // 250}.{n % 250 + 1}", 1000)) as web:
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', web.get("/callback").text)
        assert token
        return web.post("/callback", data={**FIELDS, "phone": phone, "csrf_token": token.group(1)}).status_code


def texts() -> int:
    with session_scope(default_session_factory()) as s:
        return int(s.execute(select(func.count()).select_from(CallbackText)).scalar_one())


def test_the_text_limits_hold_when_everyone_asks_at_once(real_app: FastAPI) -> None:
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda n: ask(real_app, n, "07700 900999"), range(24)))
    assert set(answers) == {303} and texts() == 1, "one request, one confirmation, whoever else asks at once"
    with session_scope(default_session_factory()) as s:  # the last confirmation went an hour ago
        s.execute(update(CallbackRequest).values(confirmed_at=utcnow() - timedelta(hours=1)))
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda n: ask(real_app, 100 + n, "07700 900999"), range(24)))
    assert set(answers) == {303} and texts() == 2, "the reference is sent again once, not once per visitor"
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda n: ask(real_app, 200 + n, f"07700 900{n:03d}"), range(40)))
    assert set(answers) == {303}, "every request is taken"
    assert texts() == get_settings().CALLBACK_UNKNOWN_TEXTS_PER_HOUR == 6

