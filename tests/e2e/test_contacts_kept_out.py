"""Member contacts never sit in Redis or reach a log: a campaign through the outbox provider on the scaled
stack, with Redis scanned while it runs and every process's log read afterwards."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.stack import Stack

from .conftest import E2E

pytestmark = pytest.mark.scaled

OUTBOX_SETTINGS = {
    "PORTAL_SENDGRID_REQUESTS_PER_SECOND": "100", "PORTAL_TWILIO_MESSAGES_PER_SECOND": "400",
    "PORTAL_EMAIL_SENDERS": "2", "PORTAL_SMS_SENDERS": "4", "PORTAL_EMAIL_CHUNK": "200", "PORTAL_SMS_CHUNK": "100",
    "PORTAL_SEND_LEASE_SECONDS": "8", "PORTAL_RECONCILE_SECONDS": "1", "PORTAL_STALL_SECONDS": "4",
    # Receipts wait in Redis's delay queue long enough for the scan below to see every one of them.
    "PORTAL_OUTBOX_EVENT_DELAY_SECONDS": "3", "PORTAL_LOG_LEVEL": "DEBUG",
}


@pytest.fixture
def outbox_stack(demo_template: str, tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    from tests.conftest import _pg_admin, create_database, drop_database

    _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{demo_template}'")
    name = f"{demo_template}_{tmp_path.name[-12:]}".lower().replace("-", "_")
    url = create_database(name, template=demo_template)
    stack = Stack(url, logs=tmp_path, env=OUTBOX_SETTINGS, worker_threads=6)
    with stack:
        stack.start_web()
        yield stack, url
    drop_database(name)


def member_contacts(url: str) -> set[str]:
    """Every member email (as written and lower-cased) and the national digits of every phone."""
    from app.members import service as member_service

    engine = create_engine(url)
    try:
        with Session(engine) as session:
            ids = list(session.execute(text("SELECT id FROM members")).scalars())
            found: set[str] = set()
            for c in member_service.contacts(session, ids).values():
                if c.email:
                    found.update({c.email, c.email.lower()})
                if c.phone:
                    found.add(c.phone[-10:])  # +447700900123 -> 7700900123: in any written form
    finally:
        engine.dispose()
    return found


_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_DIGITS = re.compile(r"\+?\d[\d \-()]{8,}\d")


def contacts_in(texts: Iterable[str], contacts: set[str]) -> set[str]:
    """The members' contacts that appear in `texts`, in any written form."""
    found: set[str] = set()
    for chunk in texts:
        for email in _EMAIL.findall(chunk):
            found.update(c for c in (email, email.lower(), email.rstrip(".")) if c in contacts)
        for run in _DIGITS.findall(chunk):
            digits = "".join(ch for ch in run if ch.isdigit())
            found.update(digits[i:i + 10] for i in range(len(digits) - 9) if digits[i:i + 10] in contacts)
    return found


def redis_values(client: redis.Redis) -> set[bytes]:
    """Every key and value in the stack's Redis database, whatever its type."""
    out: list[bytes] = []
    for key in client.scan_iter(count=1000):
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            out.extend(v for pair in client.hgetall(key).items() for v in pair)
        elif kind == b"list":
            out.extend(client.lrange(key, 0, -1))
        elif kind == b"set":
            out.extend(client.smembers(key))
        elif kind == b"zset":
            out.extend(m for m, _ in client.zrange(key, 0, -1, withscores=True))
    return set(out)


def test_no_member_contact_sits_in_redis_or_reaches_a_log(outbox_stack: tuple[Stack, str]) -> None:
    stack, url = outbox_stack
    e2e = E2E(stack, None, None, url)  # type: ignore[arg-type]  # no fake providers: the outbox sends
    contacts = member_contacts(url)
    assert len(contacts) > 1000
    client = redis.Redis.from_url(stack.redis_url)
    seen: set[bytes] = set()
    done = threading.Event()

    def scan() -> None:
        while not done.is_set():
            seen.update(redis_values(client))
            done.wait(0.3)

    stack.start_worker()
    scanner = threading.Thread(target=scan, daemon=True)
    scanner.start()
    try:
        campaign_id = e2e.start_campaign("--channels", "email,sms", "--branches", "kent,dyfed-powys,gwent")
        e2e.wait_complete(campaign_id)
        e2e.wait_receipts(campaign_id, timeout=180)
    finally:
        e2e.engine.dispose()
        done.set()
        scanner.join(timeout=30)
    seen.update(redis_values(client))
    client.close()
    assert any(b"notices.simulate" in v for v in seen), "the scan saw the receipts waiting in Redis"
    in_redis = sorted(contacts_in((v.decode("utf-8", "replace") for v in seen), contacts))
    stack.stop()
    logs = [p.read_text(errors="replace") for p in sorted(stack.logs.glob("*.log"))]
    assert any("notices.send_sms" in log for log in logs), "the workers logged at DEBUG, where Dramatiq writes jobs"
    in_logs = sorted(contacts_in(logs, contacts))
    assert in_redis == [], f"{len(in_redis)} member contacts sat in Redis"
    assert in_logs == [], f"{len(in_logs)} member contacts reached the logs"
