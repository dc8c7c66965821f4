"""Outages of PostgreSQL and of Redis mid-campaign, each seen only by this test's stack: its workers reach
the shared servers through a loopback proxy that the test cuts for twenty seconds and restores, or cuts
for a few seconds just as a chosen statement or its COMMIT goes by.

What an operator would notice: sending resumes soon after the outage ends, the campaign completes, and
no member gets the same message twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.fakes.proxy import TcpProxy
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.fakes.twilio_server import FakeTwilio
from tests.stack import Stack, wait_until

from .conftest import E2E, engine_settings

pytestmark = pytest.mark.scaled

OUTAGE_SECONDS = 20
# A lease far longer than the outage, as in production (300 s): what stalls or repeats then is the
# engine's doing, not a lease running out under a sender that is still working.
LONG_LEASE = {"PORTAL_SEND_LEASE_SECONDS": "120", "PORTAL_STALL_SECONDS": "10"}


@pytest.fixture
def database(demo_template: str, tmp_path: Path) -> Iterator[str]:
    from tests.conftest import _pg_admin, create_database, drop_database

    _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{demo_template}'")
    name = f"{demo_template}_{tmp_path.name[-12:]}".lower().replace("-", "_")
    yield create_database(name, template=demo_template)
    drop_database(name)


def sms_deliveries(e2e: E2E, campaign_id: int) -> int:
    return e2e.sql("SELECT count(*) FROM deliveries WHERE campaign_id = :c AND channel = 'sms'", c=campaign_id)[0][0]


def test_a_database_outage_mid_campaign_neither_stalls_it_nor_sends_twice(
        database: str, tmp_path: Path, loopback_no_proxy: None) -> None:
    port = make_url(database).port or 5432
    with TcpProxy(port) as pg, FakeSendGrid(auto_webhooks=True) as sendgrid, FakeTwilio(auto_callbacks=True) as twilio:
        env = {**engine_settings(sendgrid, twilio), **LONG_LEASE, "PORTAL_TWILIO_MESSAGES_PER_SECOND": "100"}
        stack = Stack(pg.url_for(database), logs=tmp_path, env=env, worker_threads=6)
        sendgrid.webhook_url = stack.base_url + "/webhooks/sendgrid"
        with stack:
            stack.start_web()  # the web loses the database too: receipts posted meanwhile are answered 503
            stack.start_worker()
            stack.start_worker()
            e2e = E2E(stack, sendgrid, twilio, database)
            campaign_id = e2e.start_campaign("--channels", "sms")
            wait_until(lambda: len(twilio.messages) >= 800, 120, 0.05, what="sending to be under way")
            pg.cut()
            time.sleep(OUTAGE_SECONDS)
            at_restore = len(twilio.messages)
            pg.restore()
            restored = time.monotonic()
            wait_until(lambda: len(twilio.messages) >= at_restore + 100, 15, 0.05,
                       what=f"sending to resume after the outage; logs in {tmp_path}")
            resumed_after = time.monotonic() - restored
            e2e.wait_complete(campaign_id)
            planned = sms_deliveries(e2e, campaign_id)
            reached = {m.status_callback for m in twilio.messages}
            duplicates = e2e.duplicates()
            unsent = e2e.sql("SELECT count(*) FROM deliveries WHERE campaign_id = :c AND channel = 'sms' "
                             "AND status NOT IN ('sent', 'delivered')", c=campaign_id)[0][0]
    print(f"database outage of {OUTAGE_SECONDS} s: {pg.refused} connections refused; 100 more SMS "
          f"{resumed_after:.1f} s after it ended; {duplicates} sent twice")
    assert unsent == 0 and len(reached) == planned, "every planned SMS was sent and recorded"
    assert duplicates == 0, "no member got the same SMS twice"


def test_a_redis_outage_mid_campaign_sends_nothing_twice(database: str, tmp_path: Path) -> None:
    redis_db = int(os.environ.get("PORTAL_TEST_REDIS_DB", "13"))
    with TcpProxy(6379) as redis_proxy:
        env = {"PORTAL_TWILIO_MESSAGES_PER_SECOND": "100", "PORTAL_SMS_SENDERS": "4", "PORTAL_SMS_CHUNK": "100",
               "PORTAL_RECONCILE_SECONDS": "1", "PORTAL_RETRY_BASE_SECONDS": "0.3", "PORTAL_RETRY_MAX_SECONDS": "2",
               "PORTAL_SEND_MAX_ATTEMPTS": "12", "PORTAL_OUTBOX_EVENT_DELAY_SECONDS": "0.2", **LONG_LEASE,
               "PORTAL_BROKER_URL": redis_proxy.url_for(f"redis://127.0.0.1:6379/{redis_db}")}
        stack = Stack(database, redis_db=redis_db, logs=tmp_path, env=env, worker_threads=6)
        with stack:
            stack.start_worker()
            stack.start_worker()
            e2e = E2E(stack, None, None, database)  # type: ignore[arg-type]  # the outbox sends
            stored = ("SELECT count(*) FROM outbox_messages WHERE channel = 'sms'",)
            campaign_id = e2e.start_campaign("--channels", "sms")
            wait_until(lambda: e2e.sql(*stored)[0][0] >= 800, 120, 0.05, what="sending to be under way")
            redis_proxy.cut()
            time.sleep(OUTAGE_SECONDS)
            redis_proxy.restore()
            e2e.wait_complete(campaign_id, timeout=300)
            planned = sms_deliveries(e2e, campaign_id)
            sent, distinct = e2e.sql("SELECT count(*), count(DISTINCT delivery_id) FROM outbox_messages "
                                     "WHERE channel = 'sms'")[0]
            e2e.engine.dispose()
    print(f"Redis outage of {OUTAGE_SECONDS} s: {redis_proxy.refused} connections refused; "
          f"{sent - distinct} SMS stored twice")
    assert distinct == planned, "every planned SMS was sent"
    assert sent == distinct, "no member got the same SMS twice"


# Short blips (2-5 s), each landing at one point of the send loop. A blip shorter than a sender's
# recording retry takes other paths than a long cut: a commit whose answer is lost (did it commit?), a
# statement refused before it reaches the server, a pool full of connections that died under it.
LEASE = b"FOR UPDATE SKIP LOCKED"
RECORD_SENT = b"SET status=CASE WHEN"
RECORD_RETRY = b"next_attempt_at=$2::TIMESTAMP WITH TIME ZONE, lease_until=$3::TIMESTAMP WITH TIME ZONE, error_code"
BLIPS = [
    # (where, the packet that triggers it, only in a transaction that sent this first, let it through, seconds)
    ("a lease committed, its answer lost", b"COMMIT", LEASE, True, 3.0),
    ("a record with a retry committed, its answer lost", b"COMMIT", RECORD_RETRY, True, 3.0),
    ("a lease refused", LEASE, None, False, 4.0),
    ("a record with a retry committed, its answer lost", b"COMMIT", RECORD_RETRY, True, 2.0),
    ("a record refused", RECORD_SENT, None, False, 2.0),
    ("a record with a retry committed, its answer lost", b"COMMIT", RECORD_RETRY, True, 4.0),
    ("a record committed, its answer lost", b"COMMIT", RECORD_SENT, True, 3.0),
    ("a record with a retry committed, its answer lost", b"COMMIT", RECORD_RETRY, True, 5.0),
    ("mid-send, whatever was under way", b"", None, False, 5.0),
]
# Longer than any blip, shorter than the default, so rows leased by a lost commit come back within the test.
BLIP_LEASE = {"PORTAL_SEND_LEASE_SECONDS": "30", "PORTAL_STALL_SECONDS": "10"}


def test_short_database_blips_at_each_point_of_the_send_loop_send_nothing_twice(
        database: str, tmp_path: Path, loopback_no_proxy: None) -> None:
    port = make_url(database).port or 5432
    with TcpProxy(port) as pg, FakeSendGrid(auto_webhooks=True) as sendgrid, FakeTwilio(auto_callbacks=True) as twilio:
        env = {**engine_settings(sendgrid, twilio), **BLIP_LEASE, "PORTAL_TWILIO_MESSAGES_PER_SECOND": "100"}
        stack = Stack(pg.url_for(database), logs=tmp_path, env=env, worker_threads=6)
        sendgrid.webhook_url = stack.base_url + "/webhooks/sendgrid"
        # As at a real campaign's pace, the provider turns some messages away for now (retried later), so a
        # record whose answer a blip loses carries retries: the one kind of record that is not idempotent.
        twilio.fail_randomly(0.1, status=503, seed=1)
        resumed: list[str] = []
        with stack:
            stack.start_web()
            stack.start_worker()
            stack.start_worker()
            e2e = E2E(stack, sendgrid, twilio, database)
            campaign_id = e2e.start_campaign("--channels", "sms")
            wait_until(lambda: len(twilio.messages) >= 300, 120, 0.05, what="sending to be under way")
            for where, pattern, after, forward, seconds in BLIPS:
                if pattern:
                    blip = pg.blip_at(pattern, after=after, forward=forward, seconds=seconds, name=where)
                else:
                    blip = pg.blip(seconds, name=where)
                assert blip.done.wait(30), f"the blip at '{where}' found its point in the send loop"
                at_restore = len(twilio.messages)
                wait_until(lambda: len(twilio.messages) >= at_restore + 100, 20, 0.05,  # noqa: B023
                           what=f"sending to resume after a blip at '{where}'; logs in {tmp_path}")
                after_restore = time.monotonic() - (blip.restored_at or 0)
                resumed.append(f"{where} ({seconds:.0f} s): 100 more SMS {after_restore:.1f} s after")
            e2e.wait_complete(campaign_id)
            planned = sms_deliveries(e2e, campaign_id)
            reached = [m.status_callback for m in twilio.messages]
            twice = sorted({d for d in reached if reached.count(d) > 1})
            unsent = e2e.sql("SELECT count(*) FROM deliveries WHERE campaign_id = :c AND channel = 'sms' "
                             "AND status NOT IN ('sent', 'delivered')", c=campaign_id)[0][0]
    print("\n".join(resumed), f"\n{len(BLIPS)} blips: {len(twice)} SMS sent twice")
    assert unsent == 0 and len(set(reached)) == planned, "every planned SMS was sent and recorded"
    assert twice == [], "no member got the same SMS twice"
