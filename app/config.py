"""Settings: the only module that reads the environment."""

from __future__ import annotations

import json
import re
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-secret-key-change-me"
# 32 zero bytes, base64: only acceptable in development and tests.
DEV_PII_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
DEV_AUDIT_KEY = "dev-audit-key-change-me"
_HOURS = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class InsecureSettings(RuntimeError):
    """Raised when production would start with a missing or default secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", env_file=None, extra="ignore")

    ENV: Environment = Environment.DEVELOPMENT
    DATABASE_URL: str = f"sqlite:///{ROOT / 'var' / 'portal.db'}"
    BROKER_URL: str | None = None
    # Redis for what all workers share: pacing, sender slots, periodic-job locks. Defaults to the broker
    # when that is Redis; set it with a RabbitMQ broker, or pacing is per process.
    REDIS_URL: str | None = None
    SECRET_KEY: SecretStr = SecretStr(DEV_SECRET)
    # Comma-separated "keyid:base64key" pairs; the first is used for new writes, all for reads.
    PII_KEY: SecretStr = SecretStr(DEV_PII_KEY)
    # Keys the audit trail's hash chain (HMAC-SHA256): without it, write access to the database is not
    # enough to rebuild a forged chain that `portal audit verify` accepts.
    AUDIT_KEY: SecretStr = SecretStr(DEV_AUDIT_KEY)
    PUBLIC_BASE_URL: str = "http://127.0.0.1:8000"
    ORGANISATION_NAME: str = "Police Staff Association"
    # Its name on Welsh pages; empty: the English name (or, for the default name, its Welsh).
    ORGANISATION_NAME_CY: str = ""
    HELPLINE_NUMBER: str = "0300 000 0000"
    NOTICE_FROM_EMAIL: str = "notices@example.org"

    SENDGRID_API_KEY: SecretStr | None = None
    SENDGRID_HOST: str = "https://api.sendgrid.com"
    SENDGRID_WEBHOOK_PUBLIC_KEY: str | None = None
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: SecretStr | None = None
    TWILIO_MESSAGING_SERVICE_SID: str | None = None
    TWILIO_FROM_NUMBER: str | None = None
    TWILIO_API_BASE: str | None = None

    # Per-provider rate limits, enforced across all workers through the broker's Redis.
    SENDGRID_REQUESTS_PER_SECOND: float = 10.0
    TWILIO_MESSAGES_PER_SECOND: float = 30.0
    PROVIDER_TIMEOUT_SECONDS: float = 30.0
    WEBHOOK_MAX_AGE_SECONDS: int = 600

    # Notice sending: how many chunks run at once per channel, chunk sizes, leases and retries.
    EMAIL_SENDERS: int = 4
    SMS_SENDERS: int = 8
    EMAIL_CHUNK: int = 1000
    # An SMS chunk is about SEND_CHUNK_SECONDS of one sender's share of the pacing limit, at most SMS_CHUNK.
    SMS_CHUNK: int = 250
    SEND_CHUNK_SECONDS: float = 2.0
    PLAN_CHUNK: int = 5000
    SEND_LEASE_SECONDS: int = 300
    SEND_MAX_ATTEMPTS: int = 6
    RETRY_BASE_SECONDS: float = 5.0
    RETRY_MAX_SECONDS: float = 600.0
    RECONCILE_SECONDS: float = 15.0
    # A sending campaign with no worker activity for this long gets its senders restarted.
    STALL_SECONDS: float = 30.0
    # Outbox provider (embedded default): simulate delivery events after this delay.
    OUTBOX_EVENT_DELAY_SECONDS: float = 1.0

    # Transactional messages (one-time codes, confirmations): their own queue and worker threads, bounded
    # retries, and a sweeper for the ones the queue lost.
    TRANSACTIONAL_WORKER_THREADS: int = 2
    TRANSACTIONAL_MAX_ATTEMPTS: int = 5
    TRANSACTIONAL_SWEEP_SECONDS: float = 5.0

    # "Check your status": a code lives this long and allows this many tries per browser (and a larger
    # budget for every browser together); a new one can be sent after the cool-down, at most
    # CHECK_MAX_SENDS an hour per identifier (past that, checks keep the last code instead of sending another).
    CHECK_CODE_MINUTES: float = 10.0
    CHECK_CODE_TRIES: int = 5  # per browser (check cookie) on each code
    # Tries on one code from every browser together; past them the code stops working for everyone.
    CHECK_CODE_GLOBAL_TRIES: int = 100
    CHECK_RESEND_SECONDS: int = 60
    CHECK_MAX_SENDS: int = 5

    # Callback requests: when one is due, by priority (urgent or vulnerable, financial data exposed, the rest).
    CALLBACK_SLA_URGENT_MINUTES: int = 60
    CALLBACK_SLA_FINANCIAL_MINUTES: int = 240
    CALLBACK_SLA_NORMAL_MINUTES: int = 1440
    # A repeated request for a phone that already has one re-sends its confirmation at most this often.
    CALLBACK_RECONFIRM_MINUTES: int = 10
    # The helpline queue: an agent's claim lapses after this long without an outcome; a retry waits at least
    # this long after the last call; after this many calls with nobody reached the request closes unreachable.
    CALLBACK_LEASE_MINUTES: float = 15.0
    CALLBACK_RETRY_GAP_MINUTES: float = 60.0
    CALLBACK_MAX_ATTEMPTS: int = 3
    # The helpline's opening hours, UK time: "HH:MM-HH:MM", or "closed". Bank holidays (dates, comma-separated
    # or a JSON list) keep the bank-holiday hours. A callback window wholly outside them is refused.
    HELPLINE_HOURS_WEEKDAY: str = "08:00-20:00"
    HELPLINE_HOURS_WEEKEND: str = "08:00-20:00"
    HELPLINE_HOURS_BANK_HOLIDAY: str = "08:00-20:00"
    BANK_HOLIDAYS: Annotated[list[date], NoDecode] = []
    # Countries whose phones a callback may be for (ISO codes: the UK and its Crown dependencies).
    CALLBACK_PHONE_COUNTRIES: Annotated[list[str], NoDecode] = ["GB", "GG", "JE", "IM"]
    # Texts about callbacks: at most this many to one phone, whoever asks; and at most this many an hour in
    # all to numbers not on file (past it: a warning and portal_callback_texts_withheld_total). Past either
    # the request is still taken, without the text.
    CALLBACK_TEXTS_PER_PHONE_HOUR: int = 3
    CALLBACK_TEXTS_PER_PHONE_DAY: int = 6
    CALLBACK_UNKNOWN_TEXTS_PER_HOUR: int = 100
    # Branch viewers never see a count below this (a small count could identify a member).
    BRANCH_COUNT_SUPPRESS_BELOW: int = 5

    # The web edge (app/web/): sessions, hosts, proxies, request bodies, request limits.
    STAFF_SESSION_IDLE_MINUTES: float = 30.0
    STAFF_SESSION_MAX_HOURS: float = 12.0
    MEMBER_SESSION_IDLE_MINUTES: float = 15.0
    MEMBER_SESSION_MAX_HOURS: float = 1.0
    # Hosts the portal answers to besides PUBLIC_BASE_URL's (comma-separated; loopback always answers).
    ALLOWED_HOSTS: str = ""
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For is believed; empty: the socket peer.
    TRUSTED_PROXIES: str = ""
    FORM_MAX_BYTES: int = 16 * 1024
    FORM_MAX_FIELDS: int = 50
    TWILIO_WEBHOOK_MAX_BYTES: int = 8 * 1024
    TWILIO_WEBHOOK_MAX_FIELDS: int = 64
    # SendGrid posts a batch when it reaches 768 KB: one more event may overshoot that a little.
    SENDGRID_WEBHOOK_MAX_BYTES: int = 1024 * 1024
    # A request body must arrive within this long, or the connection is dropped.
    BODY_READ_TIMEOUT_SECONDS: float = 10.0
    # The request line and headers must arrive within this long, or `portal serve` closes the connection.
    HEADER_READ_TIMEOUT_SECONDS: float = 10.0
    # Bearer token for /metrics; without one /metrics answers only to loopback.
    METRICS_TOKEN: SecretStr | None = None
    # Request limits ("limits" notation: "10/minute;50/hour"), per client address (IPv6 by its /64), and where a
    # `_PER_KEY` twin exists also per keyed identifier.
    LIMIT_STAFF_LOGIN: str = "10/minute;50/hour"
    # Checking your status and callbacks. Per client address (`LIMIT_X`: a police station may be one address
    # behind NAT, so roomy) and per phone or reference (`LIMIT_X_PER_KEY`: one person's pace). Checks have
    # no limit per identifier (it would let anyone keep the owner out): CHECK_MAX_SENDS caps what they cost.
    LIMIT_CHECK_REQUEST: str = "30/minute;300/hour"
    # Below CHECK_CODE_GLOBAL_TRIES an hour, so that one address cannot spend a code's budget.
    LIMIT_CHECK_CODE: str = "10/minute;60/hour"
    LIMIT_CALLBACK_REQUEST: str = "10/minute;100/hour"
    LIMIT_CALLBACK_CANCEL: str = "10/minute;100/hour"
    LIMIT_CALLBACK_CANCEL_PER_KEY: str = "5/hour"
    # "Verify a message", per client address: a person checks a few messages, a script guessing codes many.
    LIMIT_VERIFY_MESSAGE: str = "10/minute;60/hour"

    # Staff sign-in: failures per account (the address typed) and per client address back off, then lock.
    # A failure older than the window is forgotten.
    LOGIN_FAILURE_WINDOW_MINUTES: float = 60.0
    LOGIN_BACKOFF_AFTER: int = 3
    LOGIN_BACKOFF_BASE_SECONDS: float = 2.0
    LOGIN_LOCK_AFTER: int = 10
    LOGIN_CLIENT_BACKOFF_AFTER: int = 20
    LOGIN_CLIENT_LOCK_AFTER: int = 100
    LOGIN_LOCK_MINUTES: float = 15.0
    # A browser that has signed in as the person before (device cookie) has its own, roomier counter.
    LOGIN_DEVICE_BACKOFF_AFTER: int = 5
    LOGIN_DEVICE_LOCK_AFTER: int = 20
    STAFF_DEVICE_DAYS: float = 90.0
    # How long a new account's one-time enrolment link works.
    STAFF_ENROLMENT_HOURS: float = 72.0

    LOG_LEVEL: str = "INFO"
    LOG_JSON: bool = False
    # `portal worker` serves Prometheus metrics on this port when set (each worker process needs its own).
    WORKER_METRICS_PORT: int | None = None
    WORKER_METRICS_HOST: str = "127.0.0.1"

    # Embedded default: load demo data on the first start of an empty database.
    DEMO_ON_FIRST_START: bool = True
    DEMO_MEMBERS: int = 120_000
    # Accept fictional mobiles: Ofcom's drama range (07700 900000-900999) and the rest of its block 07700 9xxxxx,
    # which no network holds; the demo and the tests use them. Unset: yes in development and test, no in
    # production, where true is refused.
    ACCEPT_DRAMA_NUMBERS: bool | None = None
    # Processes that check and seal the rows of a big import (0: one per CPU; 1: the importing process only).
    IMPORT_PROCESSES: int = 0

    @field_validator("BANK_HOLIDAYS", "CALLBACK_PHONE_COUNTRIES", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("HELPLINE_HOURS_WEEKDAY", "HELPLINE_HOURS_WEEKEND", "HELPLINE_HOURS_BANK_HOLIDAY")
    @classmethod
    def _hours(cls, value: str) -> str:
        value = value.strip().lower()
        if value != "closed":
            opens, _, closes = value.partition("-")
            if not (_HOURS.fullmatch(opens.strip()) and _HOURS.fullmatch(closes.strip())
                    and opens.strip() < closes.strip()):
                raise ValueError("helpline hours are 'HH:MM-HH:MM' (opening before closing) or 'closed'")
        return value

    @model_validator(mode="after")
    def _check_pii_key(self) -> Settings:
        # Checked in every environment: a malformed key would otherwise fail at the first import or send.
        from app.kit.crypto import Keyring, KeyringError

        try:
            Keyring.parse(self.PII_KEY.get_secret_value())
        except KeyringError as exc:
            raise InsecureSettings(f"refusing to start: PORTAL_PII_KEY is not usable: {exc}") from None
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.ENV is not Environment.PRODUCTION:
            return self
        problems = []
        if self.SECRET_KEY.get_secret_value() in ("", DEV_SECRET) or len(self.SECRET_KEY.get_secret_value()) < 32:
            problems.append("PORTAL_SECRET_KEY is missing, the default, or shorter than 32 characters")
        pii = self.PII_KEY.get_secret_value()
        if not pii or DEV_PII_KEY in pii:
            problems.append("PORTAL_PII_KEY is missing or the default")
        audit_key = self.AUDIT_KEY.get_secret_value()
        if audit_key in ("", DEV_AUDIT_KEY) or len(audit_key) < 32:
            problems.append("PORTAL_AUDIT_KEY is missing, the default, or shorter than 32 characters")
        if self.ACCEPT_DRAMA_NUMBERS:
            problems.append("PORTAL_ACCEPT_DRAMA_NUMBERS is true, but drama-range numbers are never real phones")
        if problems:
            raise InsecureSettings("refusing to start in production: " + "; ".join(problems))
        return self

    def organisation_name(self, lang: str) -> str:
        """The organisation's name as a page in `lang` shows it."""
        if lang == "cy":
            if self.ORGANISATION_NAME_CY:
                return self.ORGANISATION_NAME_CY
            if self.ORGANISATION_NAME == "Police Staff Association":
                return "Cymdeithas Staff yr Heddlu"
        return self.ORGANISATION_NAME

    @property
    def https(self) -> bool:
        """Served over HTTPS: Secure `__Host-` cookies and HSTS."""
        return self.PUBLIC_BASE_URL.startswith("https://")

    @property
    def accept_drama_numbers(self) -> bool:
        """Whether imports accept Ofcom's drama-range phone numbers (as mobiles)."""
        if self.ACCEPT_DRAMA_NUMBERS is None:
            return self.ENV is not Environment.PRODUCTION
        return self.ACCEPT_DRAMA_NUMBERS

    @property
    def embedded(self) -> bool:
        return self.BROKER_URL is None

    @property
    def email_provider(self) -> str:
        return "sendgrid" if self.SENDGRID_API_KEY else "outbox"

    @property
    def sms_provider(self) -> str:
        return "twilio" if self.TWILIO_ACCOUNT_SID and self.TWILIO_AUTH_TOKEN else "outbox"


@lru_cache
def get_settings() -> Settings:
    return Settings()
