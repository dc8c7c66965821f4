"""Outages of PostgreSQL and of Redis mid-campaign, each seen only by this test's stack: its workers reach
the shared servers through a loopback proxy that the test cuts for twenty seconds and restores.

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
