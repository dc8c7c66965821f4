"""A campaign to 5,000 members on PostgreSQL and Redis, with real worker processes, the fake providers
and their signed webhooks arriving at a real web process."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.stack import wait_until

from .conftest import EMAIL_CHUNK, MEMBERS, SMS_CHUNK

pytestmark = pytest.mark.scaled


def test_a_campaign_to_5000_members_completes_with_every_delivery_final(e2e: Any) -> None:
    e2e.stack.start_worker()
    e2e.stack.start_worker()
    campaign_id = e2e.start_campaign("--channels", "email")
    e2e.wait_complete(campaign_id)
    e2e.wait_receipts(campaign_id)
    counts = e2e.counts(campaign_id)
    # Everyone has an email or a phone in the demo; those without email got the SMS version, and no
    # delivery was planned (or failed) for an address that is not on file.
    assert e2e.members_without_a_delivered_notice(campaign_id) == 0
    no_email = e2e.sql("SELECT count(*) FROM campaign_skips WHERE campaign_id = :c AND channel = 'email' "
                       "AND reason = 'no_address'", c=campaign_id)[0][0]
    assert no_email > 0 and counts.get(("email", "failed"), 0) == 0
    assert counts[("email", "delivered")] + no_email == MEMBERS
    assert counts[("sms", "delivered")] == no_email
    assert e2e.duplicates() == 0
    requests = len({m.x_message_id for m in e2e.sendgrid.messages})
    assert requests < MEMBERS / 50, "emails go in batches, not one request each"
    status = e2e.status(campaign_id)
    assert status["status"] == "completed"
    assert status["counts"]["email"]["delivered"] == counts[("email", "delivered")]
    assert sum(r["count"] for r in status["by_branch"]) == sum(counts.values())
    assert status["timeline"] and status["timeline"][-1]["delivered"] > 0


def test_a_worker_killed_mid_campaign_loses_no_member(e2e: Any) -> None:
    e2e.stack.env["PORTAL_SENDGRID_REQUESTS_PER_SECOND"] = "4"
    victim = e2e.stack.start_worker()
    campaign_id = e2e.start_campaign("--channels", "email", "--no-sms-fallback")
    wait_until(lambda: len(e2e.sendgrid.messages) >= 600, 60, 0.1, what="sending to be under way")
    e2e.stack.kill_worker(victim, signal.SIGKILL)
    stranded = e2e.sql("SELECT count(*) FROM deliveries WHERE campaign_id = :c AND status = 'sending'", c=campaign_id)
    e2e.stack.start_worker()
    e2e.wait_complete(campaign_id)
    e2e.wait_receipts(campaign_id)
    with_email = e2e.sql(f"SELECT count(*) FROM members m WHERE email_enc IS NOT NULL AND {e2e.AFFECTED}")[0][0]
    assert e2e.counts(campaign_id)[("email", "delivered")] == with_email
    reached = {m.custom_args["delivery_id"] for m in e2e.sendgrid.messages}
    assert len(reached) == with_email, "every member with an email was sent one"
    duplicates = e2e.duplicates()
    print(f"kill -9 mid-campaign: {stranded[0][0]} deliveries were leased by the killed worker; "
          f"{duplicates} emails went twice")
    # A kill can repeat what its senders had at the provider: at most one chunk per sender of that process.
    assert duplicates <= EMAIL_CHUNK * 2


def test_a_worker_killed_while_sending_sms_loses_no_member(e2e: Any) -> None:
    victim = e2e.stack.start_worker()
    campaign_id = e2e.start_campaign("--channels", "sms")
    # Mid-chunk, between two records: three senders of 100 are each about 60 into their second chunk.
    wait_until(lambda: len(e2e.twilio.messages) >= 480, 60, 0.02, what="SMS to be under way")
    e2e.stack.kill_worker(victim, signal.SIGKILL)
    stranded = e2e.sql("SELECT count(*) FROM deliveries WHERE campaign_id = :c AND status = 'sending'",
                       c=campaign_id)[0][0]
    e2e.stack.start_worker()
    e2e.wait_complete(campaign_id)
    with_phone = e2e.sql(f"SELECT count(*) FROM members m WHERE phone_enc IS NOT NULL AND {e2e.AFFECTED}")[0][0]
    reached = {m.status_callback for m in e2e.twilio.messages}
    assert len(reached) == with_phone, "every member with a phone was sent one"
    duplicates = e2e.duplicates()
    print(f"kill -9 while sending SMS: {stranded} deliveries were leased by the killed worker;"
          f" {duplicates} messages went twice")
    # Results are recorded every 50 messages (or second) within a chunk: that is all a sender can repeat,
    # and fewer, since Twilio's status callbacks settle those messages before their lease runs out.
    assert duplicates <= 4 * 50


def test_twenty_percent_provider_faults_lose_nothing(e2e: Any) -> None:
    e2e.sendgrid.fail_randomly(0.1, status=500, seed=7)
    e2e.sendgrid.add_fault(action="status", status=429, probability=0.05, retry_after=1)
    e2e.sendgrid.add_fault(action="drop", probability=0.05)
    e2e.twilio.fail_randomly(0.1, status=500, seed=7)
    e2e.twilio.add_fault(action="status", status=429, probability=0.1, retry_after=1)
    e2e.stack.start_worker()
    e2e.stack.start_worker()
    campaign_id = e2e.start_campaign("--channels", "email,sms", "--branches", "metropolitan,kent,dyfed-powys")
    e2e.wait_complete(campaign_id)
    e2e.wait_receipts(campaign_id)
    statuses = e2e.sendgrid.stats()["statuses"]
    assert statuses.get("500") and statuses.get("429"), "faults were injected"
    counts = e2e.counts(campaign_id)
    failed = {k: v for k, v in counts.items() if k[1] == "failed"}
    assert sum(failed.values()) == 0, f"every fault was retried until it went: {counts}"
    audience = e2e.sql("SELECT count(DISTINCT member_id) FROM deliveries WHERE campaign_id = :c", c=campaign_id)
    reached = e2e.sql("SELECT count(DISTINCT member_id) FROM deliveries WHERE campaign_id = :c "
                      "AND status = 'delivered'", c=campaign_id)
    assert audience[0][0] > 1000 and reached == audience, "every member of the audience was reached"


def test_pause_resume_stop_switch_and_cancel_are_obeyed_by_running_workers(e2e: Any) -> None:
    e2e.stack.env["PORTAL_SENDGRID_REQUESTS_PER_SECOND"] = "3"
    e2e.stack.env["PORTAL_EMAIL_CHUNK"] = "50"
    e2e.stack.start_worker()
    campaign_id = e2e.start_campaign("--channels", "email", "--no-sms-fallback")

    def portal(*argv: str, by: str) -> Any:
        return e2e.as_operator(by, *argv)

    def settled_count() -> int:
        """Messages accepted, once in-flight requests have finished."""
        time.sleep(2)
        return len(e2e.sendgrid.messages)

    wait_until(lambda: len(e2e.sendgrid.messages) > 0, 60, 0.1, what="sending to start")
    portal("campaign", "pause", str(campaign_id), by="admin@example.org")
    paused_at = settled_count()
    assert settled_count() == paused_at, "nothing is sent while paused"
    assert e2e.status(campaign_id)["status"] == "paused"
    portal("campaign", "resume", str(campaign_id), by="admin@example.org")
    wait_until(lambda: len(e2e.sendgrid.messages) > paused_at, 30, 0.1, what="sending to resume")
    portal("stop-all", by="supervisor@example.org")
    stopped_at = settled_count()
    assert settled_count() == stopped_at, "nothing is sent while the stop switch is on"
    portal("resume-all", by="approver@example.org")
    wait_until(lambda: len(e2e.sendgrid.messages) > stopped_at, 30, 0.1, what="sending to resume after stop-all")
    out = portal("campaign", "cancel", str(campaign_id), by="admin@example.org").stdout
    cancelled_at = settled_count()
    assert settled_count() == cancelled_at
    counts = e2e.counts(campaign_id)
    assert counts[("email", "cancelled")] > 0 and "queued deliveries cancelled" in out
    assert e2e.pending(campaign_id) == 0
    assert cancelled_at < MEMBERS


def test_the_live_web_process_rejects_forged_and_stale_webhooks(e2e: Any) -> None:
    body = json.dumps([{"event": "delivered", "delivery_id": "1", "sg_event_id": "forged"}])
    stamp = str(int(time.time()))
    attempts = [
        {"X-Twilio-Email-Event-Webhook-Timestamp": stamp,
         "X-Twilio-Email-Event-Webhook-Signature": e2e.sendgrid.sign(body + " ", stamp)},
        {"X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time()) - 7200),
         "X-Twilio-Email-Event-Webhook-Signature": e2e.sendgrid.sign(body, str(int(time.time()) - 7200))},
        {},
    ]
    for headers in attempts:
        request = urllib.request.Request(e2e.stack.base_url + "/webhooks/sendgrid", data=body.encode(),
                                         headers={"Content-Type": "application/json", **headers})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 403
    assert e2e.sql("SELECT count(*) FROM provider_events")[0][0] == 0


def test_database_connections_cut_mid_campaign_lose_nothing(e2e: Any) -> None:
    """What a database restart does to the portal: every connection of the workers and the web is cut."""
    database = make_url(e2e.url).database

    def cut() -> int:
        """Terminate every connection to the campaign's database; returns how many there were."""
        e2e.engine.dispose()
        admin = create_engine(e2e.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                return len(list(conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": database})))
        finally:
            admin.dispose()

    e2e.stack.env["PORTAL_SENDGRID_REQUESTS_PER_SECOND"] = "10"
    e2e.stack.start_worker()
    e2e.stack.start_worker()
    campaign_id = e2e.start_campaign("--channels", "email")
    wait_until(lambda: len(e2e.sendgrid.messages) >= 600, 60, 0.05, what="sending to be under way")
    cuts = []
    for _ in range(12):  # a burst, so some cuts land inside transactions, not only between them
        cuts.append(cut())
        time.sleep(0.25)
    assert sum(cuts) > 12, "the workers and the web had connections open"
    e2e.wait_complete(campaign_id)
    wait_until(lambda: e2e.pending(campaign_id) == 0, 60, what="nothing queued or sending")
    assert e2e.members_without_a_notice(campaign_id) == 0, "every member got the email or, without one, the SMS"
    duplicates = e2e.duplicates()
    print(f"{len(cuts)} cuts of {sum(cuts)} database connections in all; {duplicates} sent twice")
    # A cut can lose the record of what was at the provider: at most one chunk per sender, per cut.
    assert duplicates <= len(cuts) * (2 * EMAIL_CHUNK + 4 * SMS_CHUNK)


def test_redis_losing_everything_mid_campaign_loses_no_member(e2e: Any) -> None:
    """Redis keeps nothing on disk: a restart drops queued jobs, sender slots and pacing state."""
    e2e.stack.env["PORTAL_SENDGRID_REQUESTS_PER_SECOND"] = "10"
    e2e.stack.start_worker()
    e2e.stack.start_worker()
    campaign_id = e2e.start_campaign("--channels", "email")
    wait_until(lambda: len(e2e.sendgrid.messages) >= 600, 60, 0.05, what="sending to be under way")
    e2e.stack.flush_redis()
    e2e.wait_complete(campaign_id)
    wait_until(lambda: e2e.pending(campaign_id) == 0, 60, what="nothing queued or sending")
    assert e2e.members_without_a_notice(campaign_id) == 0, "every member got the email or, without one, the SMS"
    assert e2e.duplicates() == 0, "the database, not Redis, says what was sent"
