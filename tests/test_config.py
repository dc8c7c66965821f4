from __future__ import annotations

import base64
import os

import pytest

from app.config import InsecureSettings, Settings


def strong_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_production_refuses_default_secret_key_and_says_which() -> None:
    with pytest.raises(InsecureSettings, match="PORTAL_SECRET_KEY") as info:
        Settings(ENV="production", PII_KEY=strong_key())
    assert "PORTAL_PII_KEY" not in str(info.value)


def test_production_refuses_default_pii_key() -> None:
    with pytest.raises(InsecureSettings, match="PORTAL_PII_KEY"):
        Settings(ENV="production", SECRET_KEY="s" * 40)


def test_production_starts_with_real_secrets() -> None:
    settings = Settings(ENV="production", SECRET_KEY="s" * 40, PII_KEY=f"k1:{strong_key()}")
    assert settings.ENV == "production"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PORTAL_SENDGRID_API_KEY", "SG.test")
    settings = Settings()
    assert settings.BROKER_URL == "redis://127.0.0.1:6379/0"
    assert settings.email_provider == "sendgrid" and settings.sms_provider == "outbox"
    assert not settings.embedded


def test_the_embedded_default_needs_no_configuration() -> None:
    settings = Settings(_env_file=None)
    assert settings.embedded and settings.email_provider == "outbox"
