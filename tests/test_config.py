from __future__ import annotations

import base64
import os
import subprocess
import sys

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
    settings = Settings(ENV="production", SECRET_KEY="s" * 40, PII_KEY=f"k1:{strong_key()}", AUDIT_KEY="a" * 40)
    assert settings.ENV == "production"
    assert not settings.accept_drama_numbers


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


PRODUCTION = {"ENV": "production", "SECRET_KEY": "s" * 40, "AUDIT_KEY": "a" * 40}


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("k1:not base64!", "'k1' is not valid base64"),
        (f"k1:{base64.b64encode(os.urandom(16)).decode()}", "'k1' is 16 bytes; it must be 32"),
        (f"index:{strong_key()}", "only an 'index' PII key"),
        (f"k1:{strong_key()},k1:{strong_key()}", "'k1' is listed more than once"),
        (f":{strong_key()}", "empty or unusable id"),
        (" , ", "no PII key configured"),
    ],
)
@pytest.mark.parametrize("env", ["development", "test", "production"])
def test_a_malformed_pii_key_is_refused_at_start_saying_what_is_wrong(key: str, says: str, env: str) -> None:
    settings = {**PRODUCTION, "ENV": env}
    with pytest.raises(InsecureSettings, match="PORTAL_PII_KEY") as info:
        Settings(**{**settings, "PII_KEY": key})
    assert says in str(info.value)
    assert key.strip(" ,:") == "" or key.rpartition(":")[2] not in str(info.value), "the key itself is never quoted"


def test_drama_numbers_are_accepted_outside_production_only() -> None:
    assert Settings(ENV="development").accept_drama_numbers
    assert Settings(ENV="test").accept_drama_numbers
    assert not Settings(ENV="test", ACCEPT_DRAMA_NUMBERS=False).accept_drama_numbers
    with pytest.raises(InsecureSettings, match="PORTAL_ACCEPT_DRAMA_NUMBERS"):
        Settings(**PRODUCTION, PII_KEY=f"k1:{strong_key()}", ACCEPT_DRAMA_NUMBERS=True)


def portal(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    environ.update({f"PORTAL_{k}": v for k, v in env.items()})
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=environ, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize(
    ("command", "env", "says"),
    [
        (["serve"], {"PII_KEY": base64.b64encode(os.urandom(16)).decode()}, "PORTAL_PII_KEY is not usable"),
        (["worker"], {"PII_KEY": "index:" + strong_key(), "BROKER_URL": "redis://127.0.0.1:1/0"},
         "only an 'index' PII key"),
        (["migrate"], {"ENV": "production"}, "PORTAL_SECRET_KEY"),
        (["serve"], {"SMS_SENDERS": "many"}, "PORTAL_SMS_SENDERS"),
    ],
)
def test_refusals_at_start_are_one_line_on_stderr_not_a_traceback(command: list[str], env: dict[str, str],
                                                                   says: str) -> None:
    result = portal(*command, **env)
    assert result.returncode != 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
