"""Staff accounts for the auth tests: made through the service, codes computed from the secret like an app would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import pyotp
import pytest
from sqlalchemy.orm import Session

from app.auth import service as auth_service
from app.auth.models import Role
from app.config import get_settings
from app.db import utcnow

PASSWORD = "correct horse battery"


def code_at(secret: str, at: datetime, *, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(int(at.timestamp()) + 30 * steps)


@pytest.fixture
def make_staff(session: Session) -> Callable[..., auth_service.NewStaff]:
    def make(email: str = "pat@example.org", role: Role = Role.ADMIN) -> auth_service.NewStaff:
        created = auth_service.create_staff(session, email=email, role=role, password=PASSWORD, actor="test")
        session.flush()
        return created

    return make


@pytest.fixture
def tight_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Small thresholds so a lock is reached in a few attempts."""
    for name, value in {"LOGIN_BACKOFF_AFTER": "3", "LOGIN_LOCK_AFTER": "5", "LOGIN_CLIENT_BACKOFF_AFTER": "6",
                        "LOGIN_CLIENT_LOCK_AFTER": "8", "LOGIN_LOCK_MINUTES": "15"}.items():
        monkeypatch.setenv(f"PORTAL_{name}", value)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def now() -> datetime:
    return utcnow()
